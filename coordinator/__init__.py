"""The coordinator: tracks, variants, leases, verification and the leaderboard."""

__version__ = "0.1.0"
