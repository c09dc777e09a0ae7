"""The host limits at work in the daemon: no lease is asked for while they say no, and a lease in
progress is stopped as soon as they do.

`HostWaiter` runs between leases, in the main loop: it says on screen why the worker waits, and
until when where the limits tell (`waiting: outside --hours 22-07, until 22:00`), once per change
of reasons. `HostWatch` runs beside a lease, on a thread of its own like the LeaseKeeper: every
`check_interval_s` it asks the gate, and the first "no" sets `busy`, which the run's should_abort
reads. The daemon then hands the lease back with "host busy: <why>" and reports nothing, so the
volunteer's own use of the machine never counts against them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from worker.display import Display
from worker.host_limits import HostGate, Verdict, until_text


def _say_notes(gate: HostGate, verdict: Verdict, display: Display) -> None:
    for note in gate.new_notes(verdict):
        display.warning(f"host limits: {note}")


class HostWaiter:
    """Between leases: whether to ask for one now; when not, say why and wait one check interval."""

    def __init__(
        self,
        gate: HostGate | None,
        *,
        display: Display,
        wait: Callable[[float], object],
        on_pause: Callable[[str, datetime | None], object] | None = None,
    ) -> None:
        self._gate = gate
        self._display = display
        self._wait = wait  # returns early when the worker is told to stop
        self._on_pause = on_pause  # told (reason, until) when the reasons change, e.g. for `worker status`
        self._waiting_for: frozenset[str] | None = None

    def allows(self) -> bool:
        if self._gate is None:
            return True
        verdict = self._gate.check()
        _say_notes(self._gate, verdict, self._display)
        if verdict.allowed:
            if self._waiting_for is not None:
                self._display.event("host limits allow work again; asking for leases")
                self._waiting_for = None
            return True
        if verdict.blockers != self._waiting_for:
            until = ""
            if verdict.until is not None and verdict.at is not None:
                until = f", until {until_text(verdict.until, verdict.at)}"
            self._display.event(f"waiting: {verdict.reason}{until}")
            self._waiting_for = verdict.blockers
            if self._on_pause is not None:
                self._on_pause(verdict.reason, verdict.until)
        self._wait(self._gate.check_interval_s)
        return False


class HostWatch:
    """Beside a lease: `busy` is why the host stopped allowing work, None while it allows it."""

    def __init__(self, gate: HostGate | None, *, display: Display) -> None:
        self._gate = gate
        self._display = display
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.busy: str | None = None

    def __enter__(self) -> HostWatch:
        if self._gate is not None:
            self._thread = threading.Thread(target=self._loop, name="host-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        assert self._gate is not None
        while not self._done.wait(self._gate.check_interval_s):
            verdict = self._gate.check()
            _say_notes(self._gate, verdict, self._display)
            if not verdict.allowed:
                self.busy = verdict.reason
                self._display.warning(f"host busy: {verdict.reason}; stopping the run and handing the lease back")
                return
