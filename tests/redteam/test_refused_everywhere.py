"""A variant the policy refuses never runs anywhere: the coordinator refuses it at submission, and
a worker that gets one anyway (a lease carrying it) reports it `rejected` by the policy without
starting a process for it. A run a probe refuses is reported `rejected` with no score, and the
coordinator records it so.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.kv import LocalKV
from coordinator.main import create_app
from coordinator.migrate import upgrade
from coordinator.services.tracks import TrackParams, create_track
from shared import run_codes as codes
from shared.protocol import HardwareInfo
from shared.track_spec import TrackAssets
from tests.api.conftest import (  # noqa: F401  (fixtures, by name)
    Coordinator,
    calibrate,
    coordinator,
    holdout_pool,
    kv,
    make_worker,
    spot_check_rate,
    track_params,
)
from tests.redteam.conftest import PARSING, POLICY, executor, variant
from worker.agents.offline import OfflineAgent
from worker.client import CoordinatorClient, RetryPolicy
from worker.daemon import Counters, Daemon, DaemonOptions, StopSignal
from worker.display import PlainDisplay
from worker.execution import Outcome, RunRequest
from worker.execution.outcome import make_outcome
from worker.identity import WorkerHome


@pytest.fixture(autouse=True)
def parsing_alone() -> Iterator[None]:
    """The coordinator and the daemon parse sources here; runs of other modules wait meanwhile."""
    with PARSING:
        yield


# --- the coordinator, at submission -------------------------------------------------------------


def test_the_coordinator_refuses_a_policy_violation_at_submission_and_records_it_rejected(
    coordinator: Coordinator,  # noqa: F811
    make_worker,  # noqa: F811
) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0])
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


class AppTransport(httpx.BaseTransport):
    """Carries the worker's requests to the coordinator app in this process."""

    def __init__(self, app_client: TestClient) -> None:
        self.app_client = app_client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.app_client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.read()
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class RecordingExecutor:
    """The real executor (policy gate, sandbox, scorer and host), counting the runs it is asked for."""

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []

    def run(self, request: RunRequest, **kwargs: Any) -> Outcome:
        self.requests.append(request)
        return executor().run(request, **kwargs)


class ProbeRefusingExecutor(RecordingExecutor):
    """An executor whose causality probe refuses the run; the scorer had written a score."""

    def run(self, request: RunRequest, **kwargs: Any) -> Outcome:
        self.requests.append(request)
        metrics = {"val_bpb": 0.1, "val_loss": 0.07, "holdout_bpb": 0.1, "steps": 10, "tokens": 1280}
        return make_outcome(
            status=codes.REJECTED,
            code=codes.CAUSALITY,
            reason="probe causality: logits at position 3 changed when tokens 16 to 31 changed",
            metrics={**metrics, "train_seconds": 0.1},
            env={"torch": "fake"},
            wall_seconds=0.2,
        )


@pytest.fixture
def serve_baseline(tmp_path: Path) -> Iterator[Callable[[str], TestClient]]:
    """Start a real coordinator app (SQLite) whose track's signed baseline is the source given."""
    clients: list[TestClient] = []

    def serve(baseline: str) -> TestClient:
        settings = Settings(
            data_dir=tmp_path / "coordinator", database_url=f"sqlite:///{tmp_path / 'coordinator.sqlite3'}",
            create_builtin_tracks=False, heartbeat_interval_s=0.05, no_work_retry_after_s=0.05, lease_slack_s=60.0,
            spot_check_rate_untrusted=0.0,
        )  # fmt: skip
        upgrade(settings.resolved_database_url)
        app = create_app(settings, kv=LocalKV(), clock=lambda: datetime.now(UTC), run_reaper=False)
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


def work_one_lease(app_client: TestClient, home: Path, runs: RecordingExecutor) -> tuple[Counters, str]:
    """A real daemon doing one lease against `app_client`, training through `runs`."""
    output = io.StringIO()
    stop = StopSignal()
    client = CoordinatorClient(
        "http://coordinator.test", transport=AppTransport(app_client), wait=stop.aborting.wait,
        retry_policy=RetryPolicy(max_attempts=2, base_delay_s=0.01),
    )  # fmt: skip
    daemon = Daemon(
        client=client, home=WorkerHome(home), agent=OfflineAgent(), executor=runs,
        display=PlainDisplay(output), stop=stop,
        options=DaemonOptions(
            coordinator_url="http://coordinator.test", hardware=HardwareInfo(hardware_class="cpu"),
            account="alice", name="alice-box", max_experiments=1,
        ),
    )  # fmt: skip
    return daemon.run(), output.getvalue()


def stored_runs(app_client: TestClient) -> list[tuple[Any, ...]]:
    with app_client.app.state.arn.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.execute(
            sqlalchemy.text("select kind, status, layer, code, reason, val_bpb, metrics from runs")
        )
        return [tuple(row) for row in rows.all()]


def test_a_worker_refuses_a_leased_policy_violation_without_starting_a_process(
    tmp_path: Path, serve_baseline: Callable[[str], TestClient]
) -> None:
    app_client = serve_baseline(variant("spawn_process"))
    runs = RecordingExecutor()

    counters, output = work_one_lease(app_client, tmp_path / "alice", runs)

    [request] = runs.requests  # the lease reached the executor, whose policy gate refused it
    assert not (request.workdir / "train.py").exists()  # nothing was written for a process to run
    assert not (request.workdir / "harness.log").exists()
    assert (counters.completed, counters.rejected, counters.delivered) == (1, 1, 1)
    [(kind, status, layer, code, reason, val_bpb, _)] = stored_runs(app_client)
    assert (kind, status, layer, code, val_bpb) == (
        "calibrate",
        "rejected",
        "policy",
        "import_not_allowed",
        None,
    )
    assert reason.startswith(
        POLICY + "line 2: import_not_allowed: `subprocess` is not on the import allowlist"
    )
    assert "rejected" in output


def test_a_probe_refusal_is_reported_rejected_with_no_score_and_accepted(
    tmp_path: Path, serve_baseline: Callable[[str], TestClient]
) -> None:
    app_client = serve_baseline(variant("uniform"))

    counters, _ = work_one_lease(app_client, tmp_path / "alice", ProbeRefusingExecutor())

    assert (counters.rejected, counters.delivered, counters.refused) == (1, 1, 0)
    [(kind, status, layer, code, reason, val_bpb, metrics)] = stored_runs(app_client)
    assert (kind, status, layer, code, val_bpb) == ("calibrate", "rejected", "probe", "causality", None)
    assert reason == "probe causality: logits at position 3 changed when tokens 16 to 31 changed"
    stored = metrics if isinstance(metrics, dict) else json.loads(metrics)
    assert (stored["val_bpb"], stored["val_loss"], stored["holdout_bpb"], stored["steps"]) == (
        None,
        None,
        None,
        10,
    )
