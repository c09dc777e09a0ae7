"""A volunteer that reaches a real coordinator over HTTP, as `worker join` does: its own key, a
registration, leases, and signed reports through the worker's own client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.hashing import variant_hash
from shared.protocol import (
    HardwareInfo,
    Lease,
    LeaseKind,
    RegisterRequest,
    RegistrationPayload,
    ResultRequest,
    ResultResponse,
    RunMetrics,
    RunPayload,
    RunStatus,
    signed_fields,
)
from shared.signing import SigningKey
from worker.client import CoordinatorClient

PEAK_MEMORY_BYTES = 3_200_000_000


def _metrics(val_bpb: float) -> RunMetrics:
    return RunMetrics(val_bpb=val_bpb, steps=120, tokens=15_360, train_seconds=4.0, peak_memory_bytes=PEAK_MEMORY_BYTES)


@dataclass
class Volunteer:
    client: CoordinatorClient
    key: SigningKey
    worker_id: str

    @classmethod
    def join(cls, url: str, *, account: str, name: str) -> Volunteer:
        key = SigningKey.generate()
        client = CoordinatorClient(url, timeout_s=10)
        payload = RegistrationPayload(
            public_key=key.public_key, name=name, account=account,
            hardware=HardwareInfo(hardware_class="cpu", device_name="test CPU", cpu_count=2),
            issued_at=datetime.now(UTC),
        )  # fmt: skip
        response = client.register(RegisterRequest(payload=payload, signature=key.sign(payload.model_dump(mode="json"))))
        client.token = response.token
        return cls(client=client, key=key, worker_id=response.worker_id)

    def lease(self, track_id: str) -> Lease:
        lease = self.client.request_lease(track_id).lease
        assert lease is not None, f"the coordinator had no work on {track_id} for {self.worker_id}"
        return lease

    def report(
        self, lease: Lease, *, val_bpb: float, control_bpb: float, change: str = "", hypothesis: str | None = None
    ) -> ResultResponse:
        """A signed, successful run of `lease`; an explore proposes its variant's source plus `change`."""
        explore = lease.kind is LeaseKind.explore
        source = lease.variant.source + change
        payload = RunPayload(
            lease_id=lease.id,
            worker_id=self.worker_id,
            track_id=lease.track_id,
            kind=lease.kind,
            variant_hash=variant_hash(source) if explore else lease.variant.hash,
            parent_hash=lease.variant.hash if explore else None,
            source=source if explore else None,
            hypothesis=hypothesis if explore else None,
            seed=lease.seed,
            status=RunStatus.ok,
            metrics=_metrics(val_bpb),
            control=_metrics(control_bpb) if lease.control is not None else None,
            env={"torch": "test"},
            finished_at=datetime.now(UTC),
        )
        request = ResultRequest(payload=payload, signature=self.key.sign(signed_fields(payload)))
        return self.client.submit_result(lease.id, request)

    def close(self) -> None:
        self.client.close()
