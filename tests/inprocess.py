"""An in-process coordinator (the real ASGI app on a real database) and volunteers that talk to it.

The API tests build one per test (tests/api/conftest.py); tests/seeding.py builds one to leave a
database in a known state for a real `coordinator serve` to read.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.services.tracks import TrackParams, create_track
from shared.hashing import variant_hash
from shared.protocol import HardwareInfo, RegistrationPayload, RunMetrics, RunPayload
from shared.signing import SigningKey
from shared.track_spec import TrackAssets

TRACK = "test-track"
HEAD_BPB = 1.0  # the head's score on every test machine unless a test says otherwise
NOISE_SIGMA = 0.01  # σ of a paired difference on the test track
BASELINE = "def train(ctx):\n    raise NotImplementedError  # baseline under test\n"
BRIEF = "Make val_bpb go down."
_calibrators = itertools.count()


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Coordinator:
    client: TestClient
    clock: Callable[[], datetime]
    settings: Settings
    assets: dict[str, bytes] = field(default_factory=dict)
    holdout_sha256: str | None = None  # the track's held-out pool, when it has one

    def session(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.arn.session_factory()  # type: ignore[attr-defined]


@dataclass
class Worker:
    """A volunteer as the API sees it: a key, a token, and signed reports."""

    coordinator: Coordinator
    name: str
    account: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    worker_id: str = ""
    token: str = ""
    track_id: str = TRACK

    def registration(self) -> dict[str, Any]:
        """A signed `POST /v1/workers` body for this worker's key."""
        payload = RegistrationPayload(
            public_key=self.key.public_key,
            name=self.name,
            account=self.account,
            hardware=HardwareInfo(hardware_class="cpu"),
            issued_at=self.coordinator.clock(),
        ).model_dump(mode="json")
        return {"payload": payload, "signature": self.key.sign(payload)}

    def register(self) -> Worker:
        response = self.coordinator.client.post("/v1/workers", json=self.registration())
        assert response.status_code == 201, response.text
        body = response.json()
        self.worker_id, self.token = body["worker_id"], body["token"]
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.coordinator.client.post(path, json=body, headers=self.headers)

    def lease(self) -> dict[str, Any] | None:
        response = self.post("/v1/leases", {"track_id": self.track_id})
        assert response.status_code == 200, response.text
        return response.json()["lease"]  # type: ignore[no-any-return]

    def report(self, lease: dict[str, Any], *, val_bpb: float | None, source: str | None = None,
               hypothesis: str | None = None, status: str = "ok", holdout_bpb: float | None = None,
               control_bpb: float | None = HEAD_BPB, control_holdout_bpb: float | None = None) -> RunPayload:
        """A signed report of `lease`. A paired lease reports its control too: `control_bpb` (the
        head's score on this machine, HEAD_BPB unless given), and on held-out windows the control's
        held-out score (by default shifted from its public score as the run's own is)."""
        explore = lease["kind"] == "explore"
        control = None
        if lease.get("control") is not None and control_bpb is not None:
            if control_holdout_bpb is None and holdout_bpb is not None and val_bpb is not None:
                control_holdout_bpb = control_bpb + (holdout_bpb - val_bpb)
            control = RunMetrics(val_bpb=control_bpb, holdout_bpb=control_holdout_bpb, steps=100, tokens=12800,
                                 train_seconds=3.0)
        new_source = source if source is not None else lease["variant"]["source"] + f"# {lease['id']}\n"
        return RunPayload(
            lease_id=lease["id"],
            worker_id=self.worker_id,
            track_id=lease["track_id"],
            kind=lease["kind"],
            variant_hash=variant_hash(new_source) if explore else lease["variant"]["hash"],
            parent_hash=lease["variant"]["hash"] if explore else None,
            source=new_source if explore else None,
            hypothesis=(hypothesis or "LR 0.004 -> 0.005") if explore else None,
            seed=lease["seed"],
            status=status,
            reason=None if status == "ok" else "train() raised RuntimeError: boom",
            metrics=RunMetrics(val_bpb=val_bpb, holdout_bpb=holdout_bpb, steps=100, tokens=12800, train_seconds=3.0),
            control=control,
            env={"torch": "test"},
            finished_at=self.coordinator.clock(),
        )

    def submit(self, payload: RunPayload, *, signature: str | None = None, lease_id: str | None = None) -> Any:
        body = payload.model_dump(mode="json")
        return self.post(
            f"/v1/leases/{lease_id or payload.lease_id}/result",
            {"payload": body, "signature": signature or self.key.sign(body)},
        )

    def run(self, lease: dict[str, Any], val_bpb: float | None, **kwargs: Any) -> dict[str, Any]:
        response = self.submit(self.report(lease, val_bpb=val_bpb, **kwargs))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def write_asset(directory: Path, data: bytes) -> str:
    """Store `data` in an asset store under its sha256, as the coordinator serves it."""
    sha = hashlib.sha256(data).hexdigest()
    (directory / sha).write_bytes(data)
    return sha


def add_track(
    coordinator: Coordinator, params: TrackParams, *, baseline: str = BASELINE, brief: str = BRIEF,
    holdout_pool_file: Path | None = None,
) -> None:
    """Create a track whose assets are a few stand-in bytes (nothing here trains on them), and
    record them (and the held-out pool's hash, if one is given) on `coordinator`."""
    state = coordinator.client.app.state.arn  # type: ignore[attr-defined]
    assets_dir = coordinator.settings.assets_dir
    assets_dir.mkdir(parents=True, exist_ok=True)
    blobs = {name: f"{name} bytes".encode() for name in ("train0", "val", "token_bytes", "tokenizer")}
    shas = {name: write_asset(assets_dir, data) for name, data in blobs.items()}
    holdout_sha = write_asset(assets_dir, holdout_pool_file.read_bytes()) if holdout_pool_file is not None else None
    with state.session_factory() as session:
        create_track(
            session, params,
            assets=TrackAssets(train=(shas["train0"],), val=shas["val"], token_bytes=shas["token_bytes"],
                               tokenizer=shas["tokenizer"]),
            key=state.signing_key, brief=brief, baseline=baseline, holdout_sha256=holdout_sha,
        )
        session.commit()
    coordinator.assets.update({shas[name]: data for name, data in blobs.items()})
    coordinator.holdout_sha256 = holdout_sha


def calibrate(coordinator: Coordinator, values: list[float], holdout: list[float] | None = None, *,
              track_id: str = TRACK, control_bpb: float = HEAD_BPB) -> None:
    """Run the head's calibration leases, one value per lease (and one held-out value each, on a
    track with a pool), each by a worker of a new account: a head takes calibration runs from
    several accounts, so these workers exist only to calibrate. A promoted head's calibration is
    paired with the head it replaced, whose score on the machine is `control_bpb`."""
    for i, value in enumerate(values):
        number = next(_calibrators)
        worker = Worker(coordinator, f"cal{number}", f"calibrator{number}", track_id=track_id).register()
        lease = worker.lease()
        assert lease is not None and lease["kind"] == "calibrate", lease
        worker.run(lease, value, holdout_bpb=holdout[i] if holdout is not None else None, control_bpb=control_bpb)
