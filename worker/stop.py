"""Two-stage shutdown, as rq and arq do it: the first SIGINT/SIGTERM stops taking work, the second
aborts the run in progress."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.display import Display


class StopSignal:
    """Two-stage shutdown: the first request stops taking work, the second aborts the current run."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.aborting = threading.Event()

    def request(self) -> None:
        if self.stopping.is_set():
            self.aborting.set()
        self.stopping.set()

    def install(self, display: Display | None) -> Callable[[], None]:
        """Route SIGINT and SIGTERM to `request`; return a function that restores the old handlers.
        Without a display (while the worker starts) a request is noted silently."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handle(_signum: int, _frame: object) -> None:
            self.request()
            if display is None:
                return
            if self.aborting.is_set():
                display.event("aborting the current run and exiting")
            else:
                display.event("stopping after the current lease (interrupt again to abort it)")

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    @contextlib.contextmanager
    def installed(self, display: Display | None) -> Iterator[StopSignal]:
        """`install` for the length of a with-block."""
        restore = self.install(display)
        try:
            yield self
        finally:
            restore()
