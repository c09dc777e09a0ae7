"""A variant the policy refuses never runs anywhere: the coordinator refuses it at submission, and
a worker that gets one anyway (a lease carrying it) reports it `rejected` by the policy without
starting a harness process. A run a probe refuses is reported `rejected` with no score, and the
coordinator records it so.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.kv import LocalKV
from coordinator.main import create_app
from coordinator.migrate import upgrade
from coordinator.services.tracks import TrackParams, create_track
from shared.protocol import HardwareInfo
from shared.track_spec import TrackAssets
from tests.api.conftest import Coordinator, calibrate, coordinator, make_worker, track_params  # noqa: F401
from tests.redteam.conftest import variant
from tests.unit.test_daemon import AppTransport, Clock, FakeRunner
from worker.agents.offline import OfflineAgent
from worker.client import CoordinatorClient, RetryPolicy
from worker.daemon import Counters, Daemon, DaemonOptions, StopSignal
from worker.display import PlainDisplay
from worker.identity import WorkerHome
from worker.runner import HarnessResult

# --- the coordinator, at submission -------------------------------------------------------------


def test_the_coordinator_refuses_a_policy_violation_at_submission_and_records_it_rejected(
    coordinator: Coordinator,  # noqa: F811
    make_worker,  # noqa: F811
) -> None:
    alice = make_worker("a1", "alice")
    calibrate([alice], [1.0, 1.0])
    lease = alice.lease()
    assert lease is not None and lease["kind"] == "explore"
    source = variant("spawn_process")

    response = alice.submit(alice.report(lease, val_bpb=0.5, source=source))

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "policy_violation"
    assert body["message"].startswith(
        "refused by policy:\nline 2: import_not_allowed: `subprocess` is not on the import allowlist"
    )
    entry = coordinator.client.get("/v1/tracks/test-track/log").json()["entries"][0]
    assert (entry["status"], entry["reason"]) == ("rejected", body["message"])
    assert alice.lease() is not None  # and the lease is done with: the next one is a fresh lease


# --- the worker, when one arrives anyway ------------------------------------------------------


@pytest.fixture
def serve_baseline(tmp_path: Path) -> Iterator[Any]:
    """Start a real coordinator app (SQLite) whose track's signed baseline is the source given."""
    clients: list[TestClient] = []

    def serve(baseline: str) -> TestClient:
        settings = Settings(
            data_dir=tmp_path / "coordinator", database_url=f"sqlite:///{tmp_path / 'coordinator.sqlite3'}",
            create_builtin_tracks=False, heartbeat_interval_s=0.05, no_work_retry_after_s=0.05, lease_slack_s=60.0,
        )  # fmt: skip
        upgrade(settings.resolved_database_url)
        app = create_app(settings, kv=LocalKV(), clock=Clock(), run_reaper=False)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        state = app.state.arn
        settings.assets_dir.mkdir(parents=True, exist_ok=True)
        shas = {}
        for name in ("train0", "val", "token_bytes"):
            data = f"{name} bytes".encode()
            shas[name] = hashlib.sha256(data).hexdigest()
            (settings.assets_dir / shas[name]).write_bytes(data)
        params = TrackParams(
            id="redteam", name="Red team", hardware_class="cpu", vocab_size=256, seq_len=32, eval_tokens=1024,
            eval_batch_size=4, time_budget_s=5.0, grace_s=1.0, quorum=1, tolerance=0.05, calibration_runs=1,
        )  # fmt: skip
        with state.session_factory() as session:
            # A track created by hand signs its baseline as given: the one way a coordinator's
            # signature can cover a file the policy refuses (an older policy would be another).
            create_track(
                session, params, key=state.signing_key, brief="-", baseline=baseline,
                assets=TrackAssets(train=(shas["train0"],), val=shas["val"], token_bytes=shas["token_bytes"]),
            )  # fmt: skip
            session.commit()
        return client

    yield serve
    for client in clients:
        client.__exit__(None, None, None)


def work_one_lease(app_client: TestClient, home: Path, runner: FakeRunner) -> tuple[Counters, str]:
    """A real daemon doing one lease against `app_client`, training through `runner`."""
    output = io.StringIO()
    stop = StopSignal()
    client = CoordinatorClient(
        "http://coordinator.test", transport=AppTransport(app_client), wait=stop.aborting.wait,
        retry_policy=RetryPolicy(max_attempts=2, base_delay_s=0.01),
    )  # fmt: skip
    daemon = Daemon(
        client=client, home=WorkerHome(home), agent=OfflineAgent(), run_harness=runner,
        display=PlainDisplay(output), stop=stop,
        options=DaemonOptions(
            coordinator_url="http://coordinator.test", hardware=HardwareInfo(hardware_class="cpu"),
            account="alice", name="alice-box", max_experiments=1,
        ),
    )  # fmt: skip
    return daemon.run(), output.getvalue()


def stored_runs(app_client: TestClient) -> list[tuple[Any, ...]]:
    with app_client.app.state.arn.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.execute(sqlalchemy.text("select kind, status, reason, val_bpb, metrics from runs"))
        return [tuple(row) for row in rows.all()]


def test_a_worker_refuses_a_leased_policy_violation_without_starting_the_harness(
    tmp_path: Path, serve_baseline: Any
) -> None:
    app_client = serve_baseline(variant("spawn_process"))
    runner = FakeRunner()

    counters, output = work_one_lease(app_client, tmp_path / "alice", runner)

    assert runner.calls == []  # no harness process was started for it
    assert (counters.completed, counters.rejected, counters.delivered) == (1, 1, 1)
    [(kind, status, reason, val_bpb, _)] = stored_runs(app_client)
    assert (kind, status, val_bpb) == ("calibrate", "rejected", None)
    assert reason.startswith(
        "the static policy refused train.py: line 2: import_not_allowed: `subprocess` is not on the import allowlist"
    )
    assert not list((tmp_path / "alice" / "runs").glob("*/harness.log"))
    assert "rejected" in output


class ProbeRefusingRunner(FakeRunner):
    """A harness whose causality probe fails; it even leaves a score in its metrics."""

    def __call__(self, **kwargs: Any) -> HarnessResult:
        super().__call__(**kwargs)
        metrics = {"val_bpb": 0.1, "val_loss": 0.07, "steps": 10, "tokens": 1280, "train_seconds": 0.1}
        reason = "probe causality: logits at position 3 changed when tokens 16 to 31 changed"
        return HarnessResult("rejected", reason, metrics, {"torch": "fake"}, "", 0.2)


def test_a_probe_refusal_is_reported_rejected_with_no_score_and_accepted(
    tmp_path: Path, serve_baseline: Any
) -> None:
    app_client = serve_baseline(variant("uniform"))

    counters, _ = work_one_lease(app_client, tmp_path / "alice", ProbeRefusingRunner())

    assert (counters.rejected, counters.delivered, counters.refused) == (1, 1, 0)
    [(kind, status, reason, val_bpb, metrics)] = stored_runs(app_client)
    assert (kind, status, val_bpb) == ("calibrate", "rejected", None)
    assert reason == "probe causality: logits at position 3 changed when tokens 16 to 31 changed"
    stored = metrics if isinstance(metrics, dict) else json.loads(metrics)
    assert (stored["val_bpb"], stored["val_loss"], stored["steps"]) == (None, None, 10)
