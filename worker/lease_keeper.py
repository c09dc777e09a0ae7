"""Heartbeats for the lease in progress, from a thread of their own."""

from __future__ import annotations

import threading

from shared.protocol import HeartbeatRequest, Lease
from worker.client import ClientError, CoordinatorClient, CoordinatorError
from worker.display import Display


class LeaseKeeper:
    """Heartbeats one lease from a background thread, so a slow coordinator never stalls a run.

    Transient failures are reported once per streak and otherwise ignored: the lease has slack, and
    the next heartbeat may get through. A definitive refusal (410 lease_expired, a lease no longer
    ours) sets `lost`, which the run's should_abort reads.
    """

    def __init__(self, *, client: CoordinatorClient, lease: Lease, display: Display) -> None:
        self._client = client
        self._lease = lease
        self._display = display
        self._latest = HeartbeatRequest(phase="agent")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{lease.id[:8]}", daemon=True)
        self._failing = False
        self.lost: str | None = None

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=15)

    def update(self, request: HeartbeatRequest) -> None:
        self._latest = request  # one reference swap: the thread sends whichever is newest

    def _loop(self) -> None:
        interval = max(0.1, self._lease.heartbeat_interval_s)
        while not self._done.wait(interval) and self.lost is None:
            self._beat()

    def _beat(self) -> None:
        try:
            self._client.heartbeat(self._lease.id, self._latest)
        except CoordinatorError as exc:
            self.lost = f"{exc.code}: {exc.message}"
            self._display.warning(
                f"the coordinator took lease {self._lease.id[:8]} back ({self.lost}); aborting it"
            )
        except ClientError as exc:
            if not self._failing:
                self._display.warning(f"heartbeat failed, the run goes on: {exc}")
            self._failing = True
        else:
            if self._failing:
                self._display.event("heartbeats are getting through again")
            self._failing = False
