"""The one exception this package raises for bad input, so callers (CLI, startup) catch one type."""

from __future__ import annotations


class TrackDataError(Exception):
    """A track's data could not be built or fetched; the message says what to fix."""
