"""The worker daemon: join a coordinator, then lease, run and report until told to stop.

    join -> loop { check stop -> deliver leftovers -> get a lease -> do it -> report } -> teardown

Doing a lease: check the variant's coordinator signature and hash (worker.variant_check; refuse
and release otherwise), fetch the track's data (and, for verify and calibrate leases, the lease's
held-out windows), then either ask the agent for a child, checked by worker.agents.checking
before any training, and train it (explore), or train the leased source unchanged with the
lease's seed (verify, calibrate). Training goes through the executor (worker.execution), as
`worker run` does: the static policy, then the sandboxed scorer and host; a variant the policy
refuses is reported "rejected" without a process being started for it. A lease that cannot be run
is released with the reason, and the next one waits a little longer (a broken agent must not
spin). A background LeaseKeeper heartbeats meanwhile; if the coordinator says the lease is gone,
the run is aborted and nothing is reported. The volunteer's host limits (worker.host_limits:
--when idle, --hours, GPU temperature and power caps, CPU load) are checked before each lease is
asked for and, by a background HostWatch, during it: a busy host stops the training, and the lease
is released with "host busy: <why>", reporting nothing. The signed report goes to the outbox before it is sent, so it survives crashes and
coordinator outages (see worker.outbox).

Shutdown is two-stage. The first SIGINT/SIGTERM stops taking work; the current lease finishes and
its report is delivered. The second aborts the training child, releases the lease and exits.
Teardown always tries to deliver what the outbox holds and prints one line of counters.

What the loop is doing (state, lease, progress, pauses, the day's totals) is published in the home
for `worker status` (worker.status); a coordinator that wants a newer release stops the worker at
join, before any lease (worker.compat).

Every collaborator (client, agent, executor, display, stop signal) is passed in, so tests drive
the loop with a stand-in executor and a real coordinator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from shared.hashing import short_hash, variant_hash
from shared.protocol import (
    AgentUsage,
    ErrorCode,
    HardwareInfo,
    HeartbeatRequest,
    Lease,
    LeaseKind,
    LeaseResponse,
    ResultRequest,
    RunMetrics,
    RunPayload,
    RunStatus,
    VariantStatus,
    signed_fields,
)
from shared.run_codes import ABORTED, MAX_BPB, MAX_SECONDS, SLOW_FORWARD, Layer
from shared.signing import SigningKey
from shared.track_spec import TrackSpec
from worker import __version__
from worker.agent_context import AgentContextReader
from worker.agents.base import Agent, AgentError, Proposal
from worker.agents.checking import propose_checked
from worker.agents.pricing import describe_usage
from worker.assets import AssetError, AssetStore
from worker.client import ONCE, ClientError, CoordinatorClient, CoordinatorError, TransientError
from worker.compat import check_compatible
from worker.display import Display, ResultRow
from worker.execution import Outcome, Progress, RunRequest
from worker.host_limits import HostGate
from worker.host_watch import HostWaiter, HostWatch
from worker.identity import CoordinatorState, IdentityError, WorkerHome
from worker.lease_keeper import LeaseKeeper
from worker.outbox import DeliveryReport, Outbox, OutboxError
from worker.registration import register
from worker.status import STATUS_FILE, StatusBoard, variant_status_from
from worker.stop import StopSignal
from worker.variant_check import VariantRefused, check_variant

HeartbeatPhase = Literal["agent", "training", "evaluating", "reporting"]
# The runner's progress phases, as heartbeats name them; anything else counts as training.
_HEARTBEAT_PHASES: dict[str, HeartbeatPhase] = {"evaluating": "evaluating", "reporting": "reporting"}
MAX_FAILURE_PAUSE_S = 300.0


class _HandBack(Exception):
    """This lease will not be run; the message is the reason given when releasing it."""


class _HostBusy(Exception):
    """The host limits stopped this lease's training (or kept it from starting); the message is why."""


@dataclass(frozen=True)
class DaemonOptions:
    coordinator_url: str
    hardware: HardwareInfo
    name: str | None = None  # None: the registered name, else the host name
    account: str | None = None  # None: the registered account, else user@host
    account_secret: str | None = None  # to join an account whose machines registered elsewhere
    track_id: str | None = None  # None: any track of this hardware class
    max_experiments: int | None = None
    agent_seed: int | None = None  # mixed into the lease's own agent seed; None: that seed alone
    max_cache_gb: float | None = None  # track data kept (see worker.assets); None: no limit
    max_download_mbps: float | None = None  # megabits per second; None: as fast as the network goes


@dataclass
class Counters:
    leases: int = 0
    completed: int = 0  # runs reported (accepted, queued or refused)
    ok: int = 0
    crashed: int = 0
    rejected: int = 0
    released: int = 0  # leases handed back unrun: agent failure, refused variant, missing data
    lost: int = 0  # leases the coordinator took back mid-run
    host_busy: int = 0  # of the released: stopped by the host limits (worker.host_limits)
    delivered: int = 0
    refused: int = 0

    def summary(self) -> str:
        return (
            f"{self.leases} leases, {self.completed} runs ({self.ok} ok, {self.crashed} crashed,"
            f" {self.rejected} rejected), {self.released} released"
            + (f" ({self.host_busy} for a busy host)" if self.host_busy else "")
            + f", {self.lost} lost,"
            f" {self.delivered} results delivered, {self.refused} refused"
        )


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats (no JSON spelling) become None, odd objects their str()."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return str(value)


def _metrics(raw: dict[str, Any]) -> RunMetrics:
    known = {name: _finite(raw.get(name)) for name in RunMetrics.model_fields}
    return RunMetrics.model_validate(known)


def agent_seed_of(lease_id: str) -> int:
    """A lease's own number for its agent: fixed by the lease, different for every lease."""
    return int.from_bytes(hashlib.sha256(lease_id.encode()).digest()[:8], "big") % 2**63


def _one_line(text: str, limit: int) -> str:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line[:limit]


class RunsVariants(Protocol):
    """worker.execution.Executor, or a stand-in with the same `run`."""

    def run(
        self,
        request: RunRequest,
        *,
        on_progress: Any = None,
        should_abort: Any = None,
    ) -> Outcome: ...


@dataclass(frozen=True)
class _Track:
    spec: TrackSpec
    brief: str


class Daemon:
    def __init__(
        self,
        *,
        client: CoordinatorClient,
        home: WorkerHome,
        agent: Agent,
        executor: RunsVariants,
        display: Display,
        options: DaemonOptions,
        stop: StopSignal | None = None,
        board: StatusBoard | None = None,
        host: HostGate | None = None,
    ) -> None:
        self.client = client
        self.home = home
        self.agent = agent
        self.executor = executor
        self.display = display
        self.options = options
        self.stop = stop or StopSignal()
        self.counters = Counters()
        # What `worker status` shows, published in the home (worker.status).
        self.board = board or StatusBoard(home.root / STATUS_FILE)
        self.outbox = Outbox(home.outbox_dir)
        self.assets = AssetStore.with_limits(
            home.assets_dir,
            max_cache_gb=options.max_cache_gb,
            max_download_mbps=options.max_download_mbps,
            watcher=display,
        )
        self._key: SigningKey | None = None
        self._state: CoordinatorState | None = None
        self._tracks: dict[str, _Track] = {}
        self._context = AgentContextReader(client=client, display=display)
        self._failures = 0  # consecutive leases handed back unrun
        self._idle_reported = False
        self.host = host  # the volunteer's host limits; None: work whenever there is work
        self._host_waiter = HostWaiter(
            host,
            display=display,
            wait=self.stop.stopping.wait,
            on_pause=lambda reason, until: self.board.paused(reason, until=until),
        )
        self._watch = HostWatch(None, display=display)  # the current lease's, while one runs

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> Counters:
        """Join, then work until stopped or `max_experiments` runs are reported."""
        restore_signals = self.stop.install(self.display)
        if self.stop.stopping.is_set():  # asked while the worker started (worker.cli join)
            self.display.event("stopping: asked to stop while starting; no lease will be taken")
        self.board.start(
            coordinator=self.options.coordinator_url,
            hardware_class=self.options.hardware.hardware_class,
            agent=self.agent.name,
            stopping=self.stop.stopping.is_set,
        )
        try:
            self.join()
            while not self._should_stop():
                self._deliver(quiet=True)
                self.board.follow_candidates(variant_status_from(self.client))
                lease = self._next_lease()
                if lease is not None:
                    self._do_lease(lease)
        finally:
            self.teardown()
            self.board.stopped()
            restore_signals()
        return self.counters

    def _should_stop(self) -> bool:
        limit = self.options.max_experiments
        return self.stop.stopping.is_set() or (limit is not None and self.counters.completed >= limit)

    def join(self) -> None:
        """Pin the coordinator's key, register if needed, and deliver results left from last time."""
        self._key = self.home.signing_key()
        info = self.client.call(self.client.info)
        check_compatible(info, url=self.options.coordinator_url)  # before any lease is taken
        state = self.home.pin_coordinator(self.options.coordinator_url, info.public_key)
        if self.options.account and state.account and self.options.account != state.account:
            raise IdentityError(
                f"this worker joined {state.url} as account {state.account!r}; use --account {state.account}"
                " or another --home to join as a different account"
            )
        self._state = state
        if self._needs_registration(state):
            self._register()
        else:
            self.client.token = state.token
        self.display.event(
            f"joined {info.name} at {state.url} as {state.name} ({state.account}),"
            f" worker {short_hash(state.worker_id or '')}, hardware {self.options.hardware.hardware_class},"
            f" agent {self.agent.name}"
        )
        self.board.joined(worker_id=state.worker_id, name=state.name, account=state.account)
        self._deliver(quiet=False)

    def teardown(self) -> None:
        """Deliver what is queued (until a second interrupt), then print the counters."""
        if self._state is not None and self._state.registered and not self.stop.aborting.is_set():
            pending = [
                p for p in self.outbox.pending() if p.request.payload.worker_id == self._state.worker_id
            ]
            if pending:
                self.display.event(
                    f"delivering {len(pending)} queued result(s) before exit; interrupt to leave them"
                )
                self._deliver(quiet=False, forever=True)
        left = len(self.outbox.pending())
        if left:
            self.display.warning(
                f"{left} result(s) wait in {self.outbox.root}; they are sent at the next start"
            )
        self.display.close(f"worker stopped: {self.counters.summary()}")

    # --- registration -----------------------------------------------------------------------------

    def _needs_registration(self, state: CoordinatorState) -> bool:
        wanted_name = self.options.name or state.name
        return (
            not state.registered
            or wanted_name != state.name
            or state.hardware_class != self.options.hardware.hardware_class
        )

    def _register(self) -> None:
        assert self._key is not None and self._state is not None
        state = self._state
        register(
            self.client, self.home, state, self._key,
            name=self.options.name, account=self.options.account, hardware=self.options.hardware,
            account_secret=self.options.account_secret,
        )
        self.display.event(f"registered with {state.url} as worker {short_hash(state.worker_id or '')}")
        if state.account_secret:
            self.display.event(
                f"a machine at another address joins account {state.account} with"
                f" --account-secret {state.account_secret}"
            )

    # --- leases -----------------------------------------------------------------------------------

    def _next_lease(self) -> Lease | None:
        """A lease, or None after waiting as long as the coordinator (or the host limits) asked, or
        until stopped."""
        if not self._host_waiter.allows():
            return None

        def request() -> LeaseResponse:
            return self.client.request_lease(self.options.track_id)

        try:
            response = self.client.call_forever(request, wait=self.stop.stopping.wait)
        except TransientError:
            return None  # interrupted by a stop request
        except CoordinatorError as exc:
            if exc.code != ErrorCode.unauthorized:
                raise
            # The token was revoked or the coordinator lost it: the key still proves who we are.
            self._register()
            response = self.client.call_forever(request, wait=self.stop.stopping.wait)
        if response.lease is None:
            wait_s = response.retry_after_s if response.retry_after_s is not None else 10.0
            if not self._idle_reported:
                self.display.event(f"no work right now; asking every {wait_s:g}s")
                self._idle_reported = True
            self.board.idle(retry_after_s=wait_s)
            self.stop.stopping.wait(wait_s)
            return None
        self._idle_reported = False
        return response.lease

    def _do_lease(self, lease: Lease) -> None:
        self.counters.leases += 1
        self.display.lease_started(lease)
        self.board.lease_started(lease)
        self._watch = HostWatch(self.host, display=self.display)
        try:
            with LeaseKeeper(client=self.client, lease=lease, display=self.display) as keeper, self._watch:
                result, control, proposal = self._run_lease(lease, keeper)
        except _HandBack as exc:
            self._release(lease, str(exc))
            self._pause_after_failure(str(exc))
            return
        except _HostBusy as exc:
            if keeper.lost is not None:
                self.counters.lost += 1
                return
            # Nothing is reported: the volunteer's own use of the machine counts against no one.
            self.counters.host_busy += 1
            self._release(lease, f"host busy: {exc}")
            return
        finally:
            self._prune_run_dirs()
            self.board.lease_finished()
        self._failures = 0
        if keeper.lost is not None:
            self.counters.lost += 1
            return
        if self.stop.aborting.is_set():
            self._release(lease, "the worker was stopped before the run finished")
            return
        self._report(lease, result, proposal, control=control)

    def _run_lease(self, lease: Lease, keeper: LeaseKeeper) -> tuple[Outcome, Outcome | None, Proposal | None]:
        """Prepare and train one lease, and its control if it is paired; raise _HandBack when it
        should be released unrun."""
        assert self._state is not None
        for ref in (lease.variant, lease.control):
            if ref is None:
                continue
            try:
                check_variant(ref, track_id=lease.track_id, coordinator_key=self._state.public_key)
            except VariantRefused as exc:
                self.display.warning(f"REFUSING variant {short_hash(ref.hash)}: {exc}")
                raise _HandBack(f"variant refused by the worker: {exc}") from exc
        try:
            track = self._track(lease.track_id)
            holdout = self.client.call(lambda: self.client.holdout_windows(lease.id)) if lease.holdout else None
        except (ClientError, AssetError) as exc:
            raise _HandBack(f"could not prepare track {lease.track_id}: {exc}") from exc
        proposal = None
        if lease.kind is LeaseKind.explore:
            try:
                proposal = self._propose(lease, track)
            except AgentError as exc:
                raise _HandBack(f"agent {self.agent.name} failed: {exc}") from exc
        if self.stop.aborting.is_set():
            raise _HandBack("the worker was stopped before the run started")
        keeper.update(HeartbeatRequest(phase="training", elapsed_s=0.0))
        source = proposal.source if proposal is not None else lease.variant.source
        if lease.control is None:
            single = self._train_unless_busy(
                lease, source=source, spec=track.spec, holdout=holdout, keeper=keeper
            )
            self._check_timed_fairly(lease, single)
            return single, None, proposal
        # A paired lease: both with one seed, back to back. The order alternates with the seed, so
        # a machine that drifts (warming up, throttling) favours neither side on average.
        sources = {"control": lease.control.source, "variant": source}
        order = ("control", "variant") if lease.seed % 2 == 0 else ("variant", "control")
        outcomes: dict[str, Outcome] = {}
        for side in order:
            if side == "control":
                self.display.event(f"training the control {short_hash(lease.control.hash)} with the same seed")
            outcomes[side] = self._train_unless_busy(
                lease, source=sources[side], spec=track.spec, holdout=holdout, keeper=keeper, name=side
            )
            if keeper.lost is not None or self.stop.aborting.is_set():
                break
        for outcome in outcomes.values():
            self._check_timed_fairly(lease, outcome)
        control = outcomes.get("control")
        if control is not None and not control.ok and keeper.lost is None and not self.stop.aborting.is_set():
            # The head runs everywhere else: a failure here is this machine's, not the variant's.
            raise _HandBack(f"the control run {control.status} on this machine ({control.code}): {control.reason}")
        result = outcomes.get("variant") or control
        assert result is not None
        return result, control, proposal

    @staticmethod
    def _check_timed_fairly(lease: Lease, outcome: Outcome) -> None:
        """A verify or calibrate run whose evaluation this machine was too busy to time is handed
        back rather than reported: it says nothing about someone else's variant. (An explore is
        reported as it ran: the variant is this worker's own.)"""
        if lease.kind is not LeaseKind.explore and outcome.code == SLOW_FORWARD:
            raise _HandBack(f"this machine was too busy to time the evaluation fairly: {outcome.reason}")

    def _pause_after_failure(self, reason: str) -> None:
        """Wait longer after each lease in a row handed back, so a broken agent does not spin."""
        self._failures += 1
        pause = min(MAX_FAILURE_PAUSE_S, 2.0 ** min(self._failures, 10))
        self.display.warning(f"{reason}; lease released, pausing {pause:.0f}s")
        self.board.paused(f"{self._failures} lease(s) in a row handed back: {reason}", pause_s=pause)
        self.stop.stopping.wait(pause)

    def _release(self, lease: Lease, reason: str) -> None:
        self.counters.released += 1
        self.board.released()
        try:
            self.client.call(lambda: self.client.release(lease.id, reason), policy=ONCE)
        except ClientError as exc:
            # The lease expires on its own; releasing only hands the work on sooner.
            self.display.warning(f"could not release lease {lease.id[:8]} ({exc}); it will expire")

    # --- preparing --------------------------------------------------------------------------------

    def _track(self, track_id: str) -> _Track:
        track = self._tracks.get(track_id)
        if track is None:
            detail = self.client.call(lambda: self.client.track(track_id))
            track = _Track(spec=TrackSpec.from_json(detail.spec), brief=detail.brief)
            self._tracks[track_id] = track
        assets = track.spec.assets
        self.assets.ensure(
            self.client, track_id=track_id, hashes=[*assets.train, assets.val, assets.token_bytes]
        )
        return track

    def _propose(self, lease: Lease, track: _Track) -> Proposal:
        context = self._context.context(
            lease, brief=track.brief, hardware_class=track.spec.hardware_class, seed=self._agent_seed(lease)
        )
        self.board.phase("agent")
        self.display.agent_status(
            f"{self.agent.name} is proposing a child of {short_hash(lease.variant.hash)}"
        )
        try:
            proposal = propose_checked(
                self.agent,
                context,
                is_known=lambda digest: self._context.is_known(digest, track_id=lease.track_id),
                on_attempt=lambda attempt, reason: self.display.agent_status(
                    f"proposal {attempt} refused: {reason}"
                ),
            )
        except AgentError:
            raise
        except Exception as exc:
            # An agent bug must cost one lease, not a daemon that was meant to run for days.
            raise AgentError(f"the agent raised {type(exc).__name__}: {exc}") from exc
        hypothesis = _one_line(proposal.hypothesis, 500)
        cost = describe_usage(proposal.usage)
        self.display.agent_status(f"proposed: {hypothesis}" + (f" [{cost}]" if cost else ""))
        return dataclasses.replace(proposal, hypothesis=hypothesis)

    def _agent_seed(self, lease: Lease) -> int:
        """The agent's seed: from the lease's id, not its training seed, which a worker's explores
        of one parent share (they are judged against one paired measurement of it)."""
        base = agent_seed_of(lease.id)
        if self.options.agent_seed is None:
            return base
        return (self.options.agent_seed * 1_000_003 + base) % 2**63

    # --- running ----------------------------------------------------------------------------------

    def _train_unless_busy(self, lease: Lease, **train: Any) -> Outcome:
        """`_train`, unless the host limits say no before it starts or stop it while it runs
        (_HostBusy). A run that ended on its own is kept, even if the limits said no just after."""
        if self._watch.busy is not None:
            raise _HostBusy(self._watch.busy)
        outcome = self._train(lease, **train)
        if outcome.code == ABORTED and self._watch.busy is not None:
            raise _HostBusy(self._watch.busy)
        return outcome

    def _train(
        self,
        lease: Lease,
        *,
        source: str,
        spec: TrackSpec,
        holdout: bytes | None,
        keeper: LeaseKeeper,
        name: str = "variant",
    ) -> Outcome:
        run_dir = self.home.runs_dir / lease.id / name
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        # The lease carries the budget this run is judged by.
        spec = dataclasses.replace(spec, time_budget_s=lease.time_budget_s)

        def on_progress(progress: Progress) -> None:
            # A heartbeat carries what the protocol bounds: a loss a variant reported out of range
            # (negative, or huge early in training) is left out rather than refused.
            loss = progress.loss if progress.loss is not None and 0 <= progress.loss <= MAX_BPB else None
            keeper.update(
                HeartbeatRequest(
                    phase=_HEARTBEAT_PHASES.get(progress.phase, "training"),
                    step=progress.step,
                    loss=_finite(loss),
                    elapsed_s=_finite(min(progress.elapsed_s, MAX_SECONDS)),
                )
            )
            self.display.training_progress(
                step=progress.step,
                loss=progress.loss,
                elapsed_s=progress.elapsed_s,
                time_budget_s=progress.time_budget_s,
            )
            self.board.progress(
                phase=progress.phase, step=progress.step, loss=_finite(loss), elapsed_s=progress.elapsed_s,
                time_budget_s=progress.time_budget_s,
            )  # fmt: skip

        self.display.training_started(variant_hash=variant_hash(source), time_budget_s=spec.time_budget_s)
        request = RunRequest(
            source=source, spec=spec, data_dir=self.assets.root, seed=lease.seed, workdir=run_dir, holdout=holdout
        )
        with self.board.training(run=name, time_budget_s=spec.time_budget_s):
            return self.executor.run(
                request,
                on_progress=on_progress,
                should_abort=lambda: (
                    keeper.lost is not None or self.stop.aborting.is_set() or self._watch.busy is not None
                ),
            )

    def _prune_run_dirs(self) -> None:
        self.home.prune_runs()

    # --- reporting --------------------------------------------------------------------------------

    def _report(
        self, lease: Lease, result: Outcome, proposal: Proposal | None, *, control: Outcome | None = None
    ) -> None:
        assert self._key is not None and self._state is not None and self._state.worker_id is not None
        explore = proposal is not None
        payload = RunPayload(
            lease_id=lease.id,
            worker_id=self._state.worker_id,
            track_id=lease.track_id,
            kind=lease.kind,
            variant_hash=variant_hash(proposal.source) if proposal is not None else lease.variant.hash,
            parent_hash=lease.variant.hash if explore else None,
            source=proposal.source if proposal is not None else None,
            hypothesis=proposal.hypothesis if proposal is not None else None,
            seed=lease.seed,
            status=RunStatus(result.status),
            layer=Layer(result.layer) if result.layer is not None else None,
            code=result.code,
            # The reason as the execution vouches for it: never text the variant's process chose.
            reason=result.public_reason[:2000] if result.public_reason else None,
            metrics=_metrics(result.metrics),
            control=_metrics(control.metrics) if control is not None else None,
            env=_finite(
                {
                    # The device a worker of `join --gpus` is pinned to, recorded on a run that never
                    # reached training too; a run that trained records what its training process saw.
                    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                    **result.env,
                    "hardware_class": self.options.hardware.hardware_class,
                    "worker_version": __version__,
                }
            ),
            agent=self._usage(proposal),
            finished_at=datetime.now(UTC),
        )
        request = ResultRequest(payload=payload, signature=self._key.sign(signed_fields(payload)))
        try:
            self.outbox.put(lease.id, request)
        except OutboxError as exc:
            self._send_unsaved(lease.id, request, exc)
            return
        self.counters.completed += 1
        if payload.status is RunStatus.ok:
            self.counters.ok += 1
        elif payload.status is RunStatus.crashed:
            self.counters.crashed += 1
        else:
            self.counters.rejected += 1
        if not result.ok:
            # The whole reason, on this screen only: the report carries what the execution vouches for.
            self.display.warning(f"the run {result.status} ({result.layer}, {result.code}): {result.reason}")
        self.board.phase("reporting")
        report = self._deliver(quiet=True)
        answer = next((r for lease_id, r in report.delivered if lease_id == lease.id), None)
        self.board.reported(
            kind=lease.kind.value, run_status=payload.status.value, track_id=lease.track_id,
            variant_hash=payload.variant_hash, variant_status=answer.variant_status.value if answer else None,
        )  # fmt: skip
        self.display.run_finished(
            ResultRow(
                kind=lease.kind.value,
                track_id=lease.track_id,
                variant_hash=payload.variant_hash,
                status=payload.status.value,
                val_bpb=payload.metrics.val_bpb,
                outcome=self._outcome(lease.id, report),
                hypothesis=payload.hypothesis,
            )
        )

    def _usage(self, proposal: Proposal | None) -> AgentUsage | None:
        if proposal is None:
            return None
        return proposal.usage or AgentUsage(agent=self.agent.name)

    @staticmethod
    def _outcome(lease_id: str, report: DeliveryReport) -> str:
        for delivered_id, response in report.delivered:
            if delivered_id == lease_id:
                if response.variant_status is VariantStatus.candidate:
                    # e.g. "candidate: awaiting 2 verification(s) from other accounts"
                    return response.message.partition("variant is ")[2] or response.variant_status.value
                return response.variant_status.value
        for refused_id, error in report.refused:
            if refused_id == lease_id:
                return f"refused ({error.code})"
        return "queued in the outbox"

    def _send_unsaved(self, lease_id: str, request: ResultRequest, error: OutboxError) -> None:
        """The outbox could not keep a result (a full disk): send it once without a copy, then stop.

        Nothing on disk is half-written. If this send fails too, the result is lost, but nothing
        wrong is counted: the lease expires and its work is handed out again.
        """
        self.display.warning(
            f"the result of lease {lease_id[:8]} could not be saved ({error}); sending it without a copy"
            " on disk, then stopping: free some disk space and start the worker again"
        )
        try:
            self.client.call(lambda: self.client.submit_result(lease_id, request))
            self.counters.delivered += 1
        except ClientError as exc:
            self.display.warning(f"it was not delivered either ({exc}); the lease will be handed out again")
        self.stop.request()

    def _deliver(self, *, quiet: bool, forever: bool = False) -> DeliveryReport:
        assert self._state is not None
        report = self.outbox.deliver_all(self.client, forever=forever, worker_id=self._state.worker_id)
        self.counters.delivered += len(report.delivered)
        self.counters.refused += len(report.refused)
        for lease_id, error in report.refused:
            self.display.warning(
                f"the coordinator refused the report of lease {lease_id[:8]}: {error};"
                f" kept in {self.outbox.refused_dir}"
            )
        if report.failed and not quiet:
            self.display.warning(f"{report.remaining} result(s) not delivered yet: {report.failed[0][1]}")
        elif report.delivered and not quiet:
            self.display.event(f"delivered {len(report.delivered)} queued result(s)")
        return report
