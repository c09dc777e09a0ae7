"""Stacks on request: a coordinator or worker that seems hung writes every thread's stack to its
log when sent SIGUSR1 (`kill -USR1 <pid>`), and goes on running. faulthandler writes from the
signal handler itself, so it answers even when every thread is stuck, the event loop included."""

from __future__ import annotations

import faulthandler
import io
import signal
import sys

STACKS_SIGNAL = getattr(signal, "SIGUSR1", None)  # None on Windows


def dump_stacks_on_signal() -> bool:
    """Route SIGUSR1 to a dump of every thread's stack on stderr; False where it cannot be (no
    such signal, or a stderr with no file behind it, as under a test runner's capture)."""
    if STACKS_SIGNAL is None:
        return False
    try:
        faulthandler.register(STACKS_SIGNAL, file=sys.stderr, all_threads=True)
    except (AttributeError, ValueError, io.UnsupportedOperation, RuntimeError):
        return False
    return True
