"""An in-process coordinator (the real ASGI app on a real database) and workers that talk to it."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.kv import KeyValue, LocalKV
from coordinator.main import create_app
from coordinator.services.tracks import TrackParams, create_track
from shared.data_format import write_tokens
from shared.hashing import variant_hash
from shared.protocol import HardwareInfo, RegistrationPayload, RunMetrics, RunPayload
from shared.signing import SigningKey
from shared.track_spec import TrackAssets

TRACK = "test-track"
HEAD_BPB = 1.0  # the head's score on every test machine unless a test says otherwise
NOISE_SIGMA = 0.01  # σ of a paired difference on the test track
_calibrators = itertools.count()
BASELINE = "def train(ctx):\n    raise NotImplementedError  # baseline under test\n"


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
    clock: FakeClock
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

    def register(self) -> Worker:
        payload = RegistrationPayload(
            public_key=self.key.public_key,
            name=self.name,
            account=self.account,
            hardware=HardwareInfo(hardware_class="cpu"),
            issued_at=self.coordinator.clock(),
        )
        response = self.coordinator.client.post(
            "/v1/workers", json={"payload": payload.model_dump(mode="json"), "signature": self.key.sign(payload.model_dump(mode="json"))}
        )
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
        response = self.post("/v1/leases", {"track_id": TRACK})
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

    def run(self, lease: dict[str, Any], val_bpb: float, **kwargs: Any) -> dict[str, Any]:
        response = self.submit(self.report(lease, val_bpb=val_bpb, **kwargs))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def _write_asset(directory: Path, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    (directory / sha).write_bytes(data)
    return sha


@pytest.fixture
def track_params() -> TrackParams:
    return TrackParams(
        id=TRACK, name="Test track", hardware_class="cpu", vocab_size=256, seq_len=32, eval_tokens=1024,
        eval_batch_size=4, time_budget_s=10.0, grace_s=2.0, quorum=1, tolerance=0.05, calibration_runs=2,
        noise_sigma=NOISE_SIGMA,
    )


@pytest.fixture
def holdout_pool() -> np.ndarray | None:
    """The test track's held-out pool tokens; None builds a track without one (override to add one)."""
    return None


@pytest.fixture
def kv() -> KeyValue:
    """The coordinator's Redis roles: the in-process stand-in unless a test module overrides it."""
    return LocalKV()


@pytest.fixture
def spot_check_rate() -> float:
    """The share of negative results re-run as spot checks: none, unless a test module says otherwise,
    so that every other test knows which lease comes next."""
    return 0.0


@pytest.fixture
def coordinator(
    database_url: str, tmp_path: Path, track_params: TrackParams, holdout_pool: np.ndarray | None, kv: KeyValue,
    spot_check_rate: float,
) -> Iterator[Coordinator]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, create_builtin_tracks=False, lease_slack_s=60.0,
        spot_check_rate_untrusted=spot_check_rate, spot_check_rate_trusted=spot_check_rate,
    )
    clock = FakeClock()
    app = create_app(settings, kv=kv, clock=clock, run_reaper=False)
    with TestClient(app) as client:
        state = app.state.arn
        settings.assets_dir.mkdir(parents=True, exist_ok=True)
        blobs = {name: f"{name} bytes".encode() for name in ("train0", "val", "token_bytes", "tokenizer")}
        shas = {name: _write_asset(settings.assets_dir, data) for name, data in blobs.items()}
        holdout_sha = None
        if holdout_pool is not None:
            pool_path = tmp_path / "pool.npy"
            write_tokens(pool_path, holdout_pool, vocab_size=track_params.vocab_size)
            holdout_sha = _write_asset(settings.assets_dir, pool_path.read_bytes())
        with state.session_factory() as session:
            create_track(
                session, track_params,
                assets=TrackAssets(train=(shas["train0"],), val=shas["val"], token_bytes=shas["token_bytes"],
                                   tokenizer=shas["tokenizer"]),
                key=state.signing_key, brief="Make val_bpb go down.", baseline=BASELINE, holdout_sha256=holdout_sha,
            )
            session.commit()
        yield Coordinator(client=client, clock=clock, settings=settings, assets={shas[k]: v for k, v in blobs.items()},
                          holdout_sha256=holdout_sha)


@pytest.fixture
def make_worker(coordinator: Coordinator):  # type: ignore[no-untyped-def]
    def make(name: str, account: str) -> Worker:
        return Worker(coordinator, name, account).register()

    return make


def calibrate(coordinator: Coordinator, values: list[float], holdout: list[float] | None = None) -> None:
    """Run the head's calibration leases, one value per lease (and one held-out value each, on a
    track with a pool), each by a worker of a new account: a head takes calibration runs from
    several accounts, so these workers exist only to calibrate."""
    for i, value in enumerate(values):
        number = next(_calibrators)
        worker = Worker(coordinator, f"cal{number}", f"calibrator{number}").register()
        lease = worker.lease()
        assert lease is not None and lease["kind"] == "calibrate", lease
        worker.run(lease, value, holdout_bpb=holdout[i] if holdout is not None else None)
