"""The lease reaper: a periodic pass that expires overdue leases, so their work is handed out again,
and candidates that waited past their track's limit, which become `unverified`.

Each pass is idempotent (`leases.expire_overdue`, `verification.expire_unverified`): running it on
every replica, twice, or late changes nothing but when the work goes back. A failed pass (the database away for a
moment) is logged and retried at the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from coordinator.services.leases import expire_overdue
from coordinator.services.verification import expire_unverified

log = logging.getLogger(__name__)


def reap(session_factory: sessionmaker[Session], *, now: datetime) -> dict[str, int]:
    """One pass: expire what is overdue and commit. Returns the expired leases by kind."""
    with session_factory() as session:
        expired = expire_overdue(session, now=now)
        unverified = expire_unverified(session, now=now)
        session.commit()
    if unverified:
        log.info("%d candidate(s) waited past their track's limit and are now unverified", unverified)
    return expired


class Reaper:
    """Runs `reap` every `interval_s` on a thread of its own until stopped."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime],
        interval_s: float,
        on_expired: Callable[[dict[str, int]], None] = lambda _kinds: None,
    ) -> None:
        self._session_factory, self._clock, self._interval_s = session_factory, clock, interval_s
        self._on_expired = on_expired
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._on_expired(reap(self._session_factory, now=self._clock()))
            except Exception:  # a passing database error must not kill the reaper
                log.exception("lease reaper pass failed; retrying next interval")


class SweepGate:
    """Lets one sweep through per `every` of the app's clock, for a path that would otherwise run
    one on every request (the lease path's expiry: cheap on its own, but a write on the hottest
    path). A lease past its deadline waits at most that much longer to be handed out again."""

    def __init__(self, every: timedelta) -> None:
        self._every = every
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def due(self, now: datetime) -> bool:
        with self._lock:
            if self._last is not None and timedelta(0) <= now - self._last < self._every:
                return False
            self._last = now
            return True
