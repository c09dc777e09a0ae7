"""Signed results on disk until the coordinator has accepted them, so no finished run is ever lost.

Lifecycle of one result, by lease id:

1. `put` writes the signed ResultRequest to outbox/<lease_id>.json atomically (tmp file, fsync,
   rename, fsync of the folder) BEFORE the first attempt to send it. A crash at any later moment
   leaves either the complete file or nothing: never half a report. A write that fails (a full
   disk) removes its temporary file and raises OutboxError; the daemon then sends that one result
   without a copy and stops, asking for disk space.
2. `deliver_all` sends every pending file. A 2xx answer, including `duplicate=true`, means the
   coordinator holds the report, and `ack` deletes the file.
3. Transient failures (transport errors, 5xx, 408, 429) leave the file where it is, to be sent
   again after backoff, at the next delivery, or at the next start of the daemon.
4. A definitive refusal (any other 4xx: a late report, a revoked token, a policy refusal, a 422
   for a field out of bounds or a report that does not match its lease) moves the file to
   outbox/refused/ at once, never to be retried, with <lease_id>.error.json beside it holding the
   HTTP status, the stable code, the coordinator's message and its detail (for a 422, the fields
   that failed), so a person can see what was refused and why. Nothing is deleted that the
   coordinator did not accept. 5xx, 503 `unavailable` included, stays transient (step 3).

Resending is safe because reports are idempotent per lease: the file holds the exact signed bytes,
Ed25519 signatures are deterministic, and the coordinator answers a repeat of an accepted report
with `duplicate=true` instead of counting it twice. So a crash between the coordinator's commit and
our `ack` costs one extra request, not a double count.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from shared.protocol import ResultRequest, ResultResponse
from worker.client import ClientError, CoordinatorClient, CoordinatorError

# Lease ids come from the network and become file names: allow nothing that could leave the folder.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class OutboxError(Exception):
    """A lease id or an outbox file cannot be used."""


@dataclass(frozen=True)
class PendingResult:
    lease_id: str
    request: ResultRequest
    path: Path


@dataclass
class DeliveryReport:
    """What one `deliver_all` pass did."""

    delivered: list[tuple[str, ResultResponse]] = field(default_factory=list)
    refused: list[tuple[str, CoordinatorError]] = field(default_factory=list)
    failed: list[tuple[str, ClientError]] = field(default_factory=list)  # still pending

    @property
    def remaining(self) -> int:
        return len(self.failed)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write all of `data` to `path` or nothing: a failed write (a full disk) leaves no partial file
    and raises OutboxError saying why."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutboxError(f"cannot save {path.name} in {path.parent}: {exc.strerror or exc}") from exc
    _fsync_dir(path.parent)


class Outbox:
    """The folder of results waiting for the coordinator's acceptance (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refused_dir = root / "refused"

    def _path(self, lease_id: str) -> Path:
        if not _SAFE_ID.match(lease_id):
            raise OutboxError(f"unsafe lease id {lease_id!r}")
        return self.root / f"{lease_id}.json"

    def put(self, lease_id: str, request: ResultRequest) -> Path:
        """Persist `request` durably; call before the first send."""
        path = self._path(lease_id)
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, request.model_dump_json(exclude_unset=True).encode("utf-8"))
        return path

    def pending(self) -> list[PendingResult]:
        """Results not yet accepted, oldest first. A file that does not parse is moved to refused/."""
        if not self.root.is_dir():
            return []
        paths = sorted(self.root.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        results = []
        for path in paths:
            try:
                request = ResultRequest.model_validate_json(path.read_bytes())
            except ValidationError as exc:
                self._move_to_refused(path, {"code": "unreadable", "message": str(exc).splitlines()[0]})
                continue
            results.append(PendingResult(lease_id=path.stem, request=request, path=path))
        return results

    def ack(self, lease_id: str) -> None:
        """Forget a result the coordinator has accepted."""
        path = self._path(lease_id)
        path.unlink(missing_ok=True)
        _fsync_dir(self.root)

    def refuse(self, lease_id: str, error: CoordinatorError) -> Path:
        """Move a result the coordinator refused for good to refused/, with the error beside it."""
        return self._move_to_refused(
            self._path(lease_id),
            {"code": error.code, "message": error.message, "status": error.status, "detail": error.detail},
        )

    def refused(self) -> list[Path]:
        return sorted(p for p in self.refused_dir.glob("*.json") if not p.name.endswith(".error.json"))

    def _move_to_refused(self, path: Path, error: dict[str, object]) -> Path:
        self.refused_dir.mkdir(parents=True, exist_ok=True)
        error = {**error, "refused_at": datetime.now(UTC).isoformat()}
        # The reason first, then the move: a crash in between leaves the file pending, not unexplained.
        _write_atomically(self.refused_dir / f"{path.stem}.error.json", json.dumps(error, indent=2).encode())
        target = self.refused_dir / path.name
        os.replace(path, target)
        _fsync_dir(self.root)
        return target

    def deliver_all(
        self,
        client: CoordinatorClient,
        *,
        forever: bool = False,
        worker_id: str | None = None,
        on_delivered: Callable[[str, ResultResponse], None] | None = None,
        on_refused: Callable[[str, CoordinatorError], None] | None = None,
    ) -> DeliveryReport:
        """Send every pending result; ack, refuse or keep each one (see the module docstring).

        `forever` retries transient failures until the client's wait is interrupted (used before
        exit, when a result must not be left behind). `worker_id` limits delivery to that worker's
        reports, so a home that joined two coordinators never sends one's results to the other.
        """
        report = DeliveryReport()
        for item in self.pending():
            if worker_id is not None and item.request.payload.worker_id != worker_id:
                continue

            def send(item: PendingResult = item) -> ResultResponse:
                return client.submit_result(item.lease_id, item.request)

            try:
                response = client.call_forever(send) if forever else client.call(send)
            except CoordinatorError as exc:
                self.refuse(item.lease_id, exc)
                report.refused.append((item.lease_id, exc))
                if on_refused is not None:
                    on_refused(item.lease_id, exc)
                continue
            except ClientError as exc:  # transient or malformed: keep it for the next pass
                report.failed.append((item.lease_id, exc))
                continue
            self.ack(item.lease_id)
            report.delivered.append((item.lease_id, response))
            if on_delivered is not None:
                on_delivered(item.lease_id, response)
        return report
