"""An in-process coordinator (the real ASGI app on a real database) and workers that talk to it,
as fixtures; the classes live in tests/inprocess.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.kv import KeyValue, LocalKV
from coordinator.main import create_app
from coordinator.services.tracks import TrackParams
from shared.data_format import write_tokens
from tests.inprocess import (  # noqa: F401  (re-exported: the API tests import them from here)
    BASELINE,
    HEAD_BPB,
    NOISE_SIGMA,
    TRACK,
    Coordinator,
    FakeClock,
    Worker,
    add_track,
    calibrate,
)


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
        coordinator = Coordinator(client=client, clock=clock, settings=settings)
        pool_file = None
        if holdout_pool is not None:
            pool_file = tmp_path / "pool.npy"
            write_tokens(pool_file, holdout_pool, vocab_size=track_params.vocab_size)
        add_track(coordinator, track_params, holdout_pool_file=pool_file)
        yield coordinator


@pytest.fixture
def make_worker(coordinator: Coordinator):  # type: ignore[no-untyped-def]
    def make(name: str, account: str) -> Worker:
        return Worker(coordinator, name, account).register()

    return make
