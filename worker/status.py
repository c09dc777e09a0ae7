"""What a running worker is doing, published in its home for `worker status` to read.

The daemon keeps a `StatusBoard` and writes `<home>/status.json` (write a temporary file, then
rename it over the old one, so a reader never sees half a file) at every change of state, at most
once a second while training reports progress, and at least every REFRESH_S seconds otherwise.
Nothing goes over the network: `worker status` reads the file and the outbox folder, from
another terminal, a script or a container healthcheck.

The file is a `WorkerStatus` as JSON (schema 1):

    pid, host               the daemon's process and machine
    started_at, updated_at  UTC; updated_at older than STALE_AFTER_S means the daemon is stuck or gone
    worker_version, coordinator, worker_id, name, account, hardware_class, device ("gpu"/"cpu"), agent
    cuda_visible_devices    the device a worker of `join --gpus` is pinned to (None when not pinned)
    stopping                a first stop request came: the current lease finishes, no new one is taken
    slots[]                 one per concurrent lease (one per worker process):
      state                 starting | training (an explore) | verifying (a verify or calibrate lease)
                            | idle (no work offered) | paused (backing off, or a host limit)
                            | waiting (for the coordinator) | stopped
      since, reason, until  when the state began; why it is paused, waiting or idle, and until when
      lease                 id, kind, track_id, variant (short hash: the parent of an explore, else the
                            variant rerun), paired, seed, deadline, time_budget_s
      progress              phase (preparing, agent, training, evaluating, reporting), run (variant or
                            control) and runs_left in a paired lease, step, loss, elapsed_s,
                            time_budget_s, eta (the expected end of this lease's training)
    today                   totals for the UTC day, kept across restarts of the daemon:
      experiments           explore runs reported
      candidates            of those, claimed improvements the coordinator queued for verification
      verified              candidates of this worker found promoted today (asked every few minutes)
      verify_runs           verify and calibrate runs reported (work for other accounts' claims)
      failed, released      runs reported crashed or rejected; leases handed back unrun
      device_hours          wall time spent training on this machine's device, in hours

`worker status --json` prints a `StatusReport`: `running`, a `note` saying why not when it is not,
the `home`, the last `worker` status published (also after it stopped), and the `outbox` backlog
(results waiting for the coordinator, and results it refused), counted from the folder itself.

The home of a `worker join --gpus` supervisor holds no status.json but a SLOTS_FILE naming its slot
homes (worker.gpus), each with a worker's status.json. Its report is one worker whose slots are
theirs: `slot` is the GPU number, `worker_id` and `name` say which worker it is, a slot whose worker
is not running is "stopped" with the reason; totals and outbox backlogs are summed, and it runs
while any of them does.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from shared.hashing import short_hash
from shared.protocol import Lease, LeaseKind
from worker import __version__
from worker.client import ONCE, ClientError, CoordinatorClient

STATUS_FILE = "status.json"
SLOTS_FILE = "slots.json"  # in the home of a `join --gpus` supervisor (worker.gpus)
REFRESH_S = 10.0  # rewritten at least this often while the daemon runs
STALE_AFTER_S = 60.0  # older than this, the daemon is not updating it: stuck, killed or gone
PROGRESS_EVERY_S = 1.0  # training progress is written at most this often
FOLLOW_EVERY_S = 300.0  # how often the daemon asks the coordinator about its open candidates
MAX_FOLLOWED = 50  # candidates remembered for that

SlotState = Literal["starting", "training", "verifying", "idle", "paused", "waiting", "stopped"]
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class LeaseInfo(BaseModel):
    id: str
    kind: str  # explore, verify, calibrate
    track_id: str
    variant: str  # short hash: the parent of an explore, else the variant trained unchanged
    paired: bool = False  # trains a control with the same seed as well
    seed: int
    deadline: datetime
    time_budget_s: float


class ProgressInfo(BaseModel):
    phase: str = "preparing"  # preparing, agent, training, evaluating, reporting
    run: str | None = None  # "variant" or "control" in a paired lease
    runs_left: int = 0  # trainings of this lease still to come after this one
    step: int | None = None
    loss: float | None = None
    elapsed_s: float | None = None
    time_budget_s: float | None = None
    eta: datetime | None = None  # the expected end of the lease's training (evaluation not included)


class SlotStatus(BaseModel):
    slot: int = 0  # the GPU number in the report of a `join --gpus` home
    state: SlotState = "starting"
    since: datetime
    reason: str | None = None
    until: datetime | None = None
    lease: LeaseInfo | None = None
    progress: ProgressInfo | None = None
    # In the report of a `join --gpus` home only: the worker of this slot.
    worker_id: str | None = None
    name: str | None = None


class Candidate(BaseModel):
    track_id: str
    hash: str


class DayTotals(BaseModel):
    day: date
    experiments: int = 0
    candidates: int = 0
    verified: int = 0
    verify_runs: int = 0
    failed: int = 0
    released: int = 0
    device_hours: float = 0.0


class WorkerStatus(BaseModel):
    schema_version: Literal[1] = 1
    pid: int
    host: str
    started_at: datetime
    updated_at: datetime
    worker_version: str = __version__
    coordinator: str = ""
    worker_id: str | None = None
    name: str | None = None
    account: str | None = None
    hardware_class: str = ""
    device: Literal["gpu", "cpu"] = "cpu"
    agent: str = ""
    cuda_visible_devices: str | None = None
    stopping: bool = False
    slots: list[SlotStatus]
    today: DayTotals
    # This worker's candidates still awaiting a verdict, so `verified` survives a restart.
    open_candidates: list[Candidate] = Field(default_factory=list)


class OutboxBacklog(BaseModel):
    pending: int = 0  # signed results the coordinator has not accepted yet
    refused: int = 0  # results it refused for good (kept in outbox/refused/ with the reason)
    oldest: datetime | None = None  # when the oldest pending result was written


class StatusReport(BaseModel):
    running: bool
    note: str | None = None  # why it is not running, when it is not
    home: str
    worker: WorkerStatus | None = None
    outbox: OutboxBacklog


# --- publishing (the daemon) -----------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class StatusBoard:
    """The daemon's status, written to `path` on each change (see the module docstring).

    Every method may be called from any thread. Publishing never raises: a status file that cannot
    be written (a full disk) must not stop a worker that can still train and report.
    """

    def __init__(self, path: Path, *, clock: Clock = _now) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        now = clock()
        self.status = WorkerStatus(
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=now,
            updated_at=now,
            slots=[SlotStatus(since=now)],
            today=DayTotals(day=now.date()),
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
        self._stopping: Callable[[], bool] = lambda: False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_write = -float("inf")
        self._last_follow = -float("inf")
        self._trainings = 0  # trainings started for the current lease (a paired one has two)

    @property
    def slot(self) -> SlotStatus:
        return self.status.slots[0]

    # --- life cycle ---

    def start(
        self, *, coordinator: str, hardware_class: str, agent: str, stopping: Callable[[], bool] | None = None
    ) -> None:
        """Publish "starting" (keeping today's totals from an earlier run) and refresh from a thread."""
        with self._lock:
            previous = read_published(self.path)
            if previous is not None:
                if previous.today.day == self.status.today.day:
                    self.status.today = previous.today
                self.status.open_candidates = previous.open_candidates
            self.status.coordinator = coordinator
            self.status.hardware_class = hardware_class
            self.status.device = "cpu" if hardware_class == "cpu" else "gpu"
            self.status.agent = agent
            if stopping is not None:
                self._stopping = stopping
            self._publish()
        self._thread = threading.Thread(target=self._refresh, name="status", daemon=True)
        self._thread.start()

    def _refresh(self) -> None:
        while not self._done.wait(REFRESH_S):
            with self._lock:
                self._publish()

    def stopped(self) -> None:
        """The daemon is exiting: publish "stopped" and end the refreshing."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._set_state("stopped", lease=None)

    def joined(self, *, worker_id: str | None, name: str | None, account: str | None) -> None:
        with self._lock:
            self.status.worker_id, self.status.name, self.status.account = worker_id, name, account
            self._publish()

    # --- states ---

    def _set_state(
        self,
        state: SlotState,
        *,
        reason: str | None = None,
        until: datetime | None = None,
        lease: LeaseInfo | Literal["keep"] | None = "keep",
    ) -> None:
        slot = self.slot
        if slot.state != state:
            slot.since = self._clock()
        slot.state, slot.reason, slot.until = state, reason, until
        if lease != "keep":
            slot.lease = lease
            slot.progress = ProgressInfo() if lease is not None else None
        self._publish()

    def _in(self, seconds: float | None) -> datetime | None:
        return self._clock() + timedelta(seconds=seconds) if seconds is not None else None

    def idle(self, *, retry_after_s: float) -> None:
        """No work was offered; the next request is in `retry_after_s`."""
        with self._lock:
            self._set_state("idle", reason="no work offered", until=self._in(retry_after_s), lease=None)

    def waiting(self, reason: str, *, delay_s: float | None = None) -> None:
        """Waiting for the coordinator (unreachable, busy, rate limiting) until the next try."""
        with self._lock:
            self._set_state("waiting", reason=reason, until=self._in(delay_s))

    def paused(self, reason: str, *, until: datetime | None = None, pause_s: float | None = None) -> None:
        """Taking no work for a while: after failures in a row, or for a limit of the host."""
        if until is not None and until.tzinfo is None:
            until = until.astimezone()  # a naive time is this machine's local time
        with self._lock:
            self._set_state("paused", reason=reason, until=until or self._in(pause_s), lease=None)

    def lease_started(self, lease: Lease) -> None:
        info = LeaseInfo(
            id=lease.id,
            kind=lease.kind.value,
            track_id=lease.track_id,
            variant=short_hash(lease.variant.hash),
            paired=lease.control is not None,
            seed=lease.seed,
            deadline=lease.deadline,
            time_budget_s=lease.time_budget_s,
        )
        with self._lock:
            self._trainings = 0
            state: SlotState = "training" if lease.kind is LeaseKind.explore else "verifying"
            self._set_state(state, lease=info)

    def _lease_state(self) -> SlotState:
        lease = self.slot.lease
        return "training" if lease is None or lease.kind == LeaseKind.explore.value else "verifying"

    def phase(self, phase: str) -> None:
        """The lease moved on: agent, reporting... (a wait for the coordinator in between is over)."""
        with self._lock:
            if self.slot.progress is None:
                self.slot.progress = ProgressInfo()
            self.slot.progress.phase = phase
            self._set_state(self._lease_state())

    @contextlib.contextmanager
    def training(self, *, run: str, time_budget_s: float) -> Iterator[None]:
        """Around one training of the current lease: its progress, and its time on the device."""
        with self._lock:
            lease = self.slot.lease
            self._trainings += 1
            runs_left = max(0, (2 if lease is not None and lease.paired else 1) - self._trainings)
            self.slot.progress = ProgressInfo(
                phase="training", run=run, runs_left=runs_left, time_budget_s=time_budget_s, elapsed_s=0.0,
                eta=self._eta(0.0, time_budget_s, runs_left),
            )  # fmt: skip
            self._set_state(self._lease_state())
        started = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._today().device_hours += (time.monotonic() - started) / 3600.0
                self._publish()

    def _eta(self, elapsed_s: float, budget_s: float | None, runs_left: int) -> datetime | None:
        if budget_s is None:
            return None
        return self._clock() + timedelta(seconds=max(0.0, budget_s - elapsed_s) + runs_left * budget_s)

    def progress(
        self,
        *,
        phase: str,
        step: int | None,
        loss: float | None,
        elapsed_s: float,
        time_budget_s: float | None,
    ) -> None:
        with self._lock:
            progress = self.slot.progress
            if progress is None:
                progress = self.slot.progress = ProgressInfo()
            changed = progress.phase != phase or (progress.step is None and step is not None)
            progress.phase, progress.step, progress.loss, progress.elapsed_s = phase, step, loss, elapsed_s
            progress.time_budget_s = time_budget_s
            progress.eta = self._eta(elapsed_s, time_budget_s, progress.runs_left)
            if (
                changed
                or self.slot.state == "waiting"
                or time.monotonic() - self._last_write >= PROGRESS_EVERY_S
            ):
                self._set_state(self._lease_state())

    def lease_finished(self) -> None:
        with self._lock:
            self._set_state("idle", lease=None)

    # --- totals ---

    def _today(self) -> DayTotals:
        day = self._clock().date()
        if self.status.today.day != day:
            self.status.today = DayTotals(day=day)
        return self.status.today

    def reported(
        self, *, kind: str, run_status: str, variant_status: str | None, track_id: str, variant_hash: str
    ) -> None:
        """One run reported (delivered or queued); `variant_status` is the coordinator's answer, if any."""
        with self._lock:
            today = self._today()
            if kind == LeaseKind.explore.value:
                today.experiments += 1
                if variant_status == "candidate":
                    today.candidates += 1
                    self.status.open_candidates = [
                        *self.status.open_candidates[-(MAX_FOLLOWED - 1) :],
                        Candidate(track_id=track_id, hash=variant_hash),
                    ]
            else:
                today.verify_runs += 1
            if run_status != "ok":
                today.failed += 1
            self._publish()

    def released(self) -> None:
        with self._lock:
            self._today().released += 1
            self._publish()

    def follow_candidates(
        self, variant_status: Callable[[str, str], str | None], *, force: bool = False
    ) -> None:
        """Ask about open candidates (at most every FOLLOW_EVERY_S): count the promoted ones, forget
        decided ones. `variant_status(track_id, hash)` is the status, or None when it cannot tell."""
        with self._lock:
            if not self.status.open_candidates or (
                not force and time.monotonic() - self._last_follow < FOLLOW_EVERY_S
            ):
                return
            self._last_follow = time.monotonic()
            candidates = list(self.status.open_candidates)
        decided: list[Candidate] = []
        promoted = 0
        for candidate in candidates:
            verdict = variant_status(candidate.track_id, candidate.hash)
            if verdict is not None and verdict != "candidate":
                decided.append(candidate)
                promoted += verdict == "verified"
        with self._lock:
            self._today().verified += promoted
            self.status.open_candidates = [c for c in self.status.open_candidates if c not in decided]
            self._publish()

    # --- writing ---

    def _publish(self) -> None:
        status = self.status
        status.updated_at = self._clock()
        self._today()  # a new UTC day starts from zero
        status.stopping = status.stopping or self._stopping()
        self._last_write = time.monotonic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.path, status.model_dump_json(indent=2) + "\n")
        except OSError:
            pass  # see the class docstring


def variant_status_from(client: CoordinatorClient) -> Callable[[str, str], str | None]:
    """`follow_candidates`' question, asked once of the coordinator; None when it does not answer."""

    def status_of(track_id: str, digest: str) -> str | None:
        try:
            return client.call(lambda: client.variant(digest, track_id=track_id), policy=ONCE).status.value
        except ClientError:
            return None

    return status_of


# --- reading (`worker status`) ---------------------------------------------------------------------


def read_published(path: Path) -> WorkerStatus | None:
    """The status last written at `path`, or None when there is none or it cannot be read."""
    try:
        return WorkerStatus.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def outbox_backlog(outbox: Path) -> OutboxBacklog:
    """Counted from the folder, so it is right whether or not a worker is running."""
    pending = list(outbox.glob("*.json")) if outbox.is_dir() else []
    refused_dir = outbox / "refused"
    refused = (
        [p for p in refused_dir.glob("*.json") if not p.name.endswith(".error.json")]
        if refused_dir.is_dir()
        else []
    )
    oldest = None
    with contextlib.suppress(OSError):
        if pending:
            oldest = datetime.fromtimestamp(min(p.stat().st_mtime for p in pending), tz=UTC)
    return OutboxBacklog(pending=len(pending), refused=len(refused), oldest=oldest)


def describe_age(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def read_status(
    home: Path,
    *,
    now: datetime | None = None,
    alive: Callable[[int], bool] = pid_alive,
    hostname: str | None = None,
) -> StatusReport:
    """Whether a worker runs with `home`, and what it last published (see the module docstring)."""
    now = now or _now()
    path = home / STATUS_FILE
    if not path.exists() and (home / SLOTS_FILE).exists():
        return _read_slots(home, now=now, alive=alive, hostname=hostname)
    backlog = outbox_backlog(home / "outbox")

    def report(running: bool, note: str | None, worker: WorkerStatus | None = None) -> StatusReport:
        return StatusReport(running=running, note=note, home=str(home), worker=worker, outbox=backlog)

    if not path.exists():
        return report(False, "not running: no worker has published a status in this home")
    worker = read_published(path)
    if worker is None:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return report(False, f"not running? {path} cannot be read ({exc})")
        return report(False, f"not running? {path} was written by another release of the worker")
    age = (now - worker.updated_at).total_seconds()
    ago = f"{describe_age(age)} ago"
    if worker.slots and worker.slots[0].state == "stopped":
        return report(False, f"not running: stopped {ago}", worker)
    same_host = worker.host == (hostname or socket.gethostname())
    if same_host and not alive(worker.pid):
        return report(False, f"not running: process {worker.pid} is gone (last update {ago})", worker)
    if age > STALE_AFTER_S:
        still = (
            f"process {worker.pid} still exists but"
            if same_host
            else f"process {worker.pid} on {worker.host}"
        )
        return report(
            False, f"not running: no update for {describe_age(age)} ({still} is not updating it)", worker
        )
    return report(True, None, worker)


def _read_slots(
    home: Path, *, now: datetime, alive: Callable[[int], bool], hostname: str | None
) -> StatusReport:
    """The report of a `join --gpus` home: its slot homes' workers as one (see the module docstring)."""
    try:
        record = json.loads((home / SLOTS_FILE).read_text(encoding="utf-8"))
        slots = [(int(entry["gpu"]), str(entry["home"])) for entry in record["slots"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return StatusReport(
            running=False, note=f"not running? {home / SLOTS_FILE} cannot be read ({exc})", home=str(home),
            outbox=outbox_backlog(home / "outbox"),
        )  # fmt: skip
    reports = [
        (gpu, read_status(home / name, now=now, alive=alive, hostname=hostname)) for gpu, name in slots
    ]
    backlogs = [outbox_backlog(home / "outbox"), *(report.outbox for _, report in reports)]
    oldest = [backlog.oldest for backlog in backlogs if backlog.oldest is not None]
    backlog = OutboxBacklog(
        pending=sum(b.pending for b in backlogs), refused=sum(b.refused for b in backlogs),
        oldest=min(oldest) if oldest else None,
    )  # fmt: skip
    published = [(gpu, report) for gpu, report in reports if report.worker is not None]
    running = any(report.running for _, report in reports)
    note = None if running else f"not running: none of the {_count(len(slots), 'GPU worker')} runs"
    if not published:
        return StatusReport(running=running, note=note, home=str(home), outbox=backlog)
    merged = published[0][1].worker
    assert merged is not None
    merged = merged.model_copy(deep=True)
    merged.pid = int(record.get("pid", merged.pid))
    merged.worker_id = None
    merged.cuda_visible_devices = None
    merged.name = (merged.name or "").removesuffix(f"-gpu{published[0][0]}") or None
    merged.slots, merged.open_candidates = [], []
    merged.today = DayTotals(day=now.date())
    classes: list[str] = []
    for gpu, report in published:
        worker = report.worker
        assert worker is not None
        slot = worker.slots[0].model_copy(
            update={"slot": gpu, "worker_id": worker.worker_id, "name": worker.name}
        )
        if not report.running and slot.state != "stopped":
            stopped = {
                "state": "stopped",
                "reason": report.note,
                "until": None,
                "lease": None,
                "progress": None,
            }
            slot = slot.model_copy(update=stopped)
        merged.slots.append(slot)
        merged.started_at = min(merged.started_at, worker.started_at)
        merged.updated_at = max(merged.updated_at, worker.updated_at)
        merged.stopping = merged.stopping or worker.stopping
        merged.open_candidates += worker.open_candidates
        if worker.today.day == merged.today.day:
            for field in ("experiments", "candidates", "verified", "verify_runs", "failed", "released"):
                setattr(merged.today, field, getattr(merged.today, field) + getattr(worker.today, field))
            merged.today.device_hours += worker.today.device_hours
        if worker.hardware_class not in classes:
            classes.append(worker.hardware_class)
    merged.hardware_class = ", ".join(classes)
    return StatusReport(running=running, note=note, home=str(home), worker=merged, outbox=backlog)


# --- the human form ----------------------------------------------------------------------------------


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _clock_time(moment: datetime | None, now: datetime) -> str:
    """In this machine's local time, e.g. "14:05:09 CET (in 3m)" or "... (2m ago)"."""
    if moment is None:
        return ""
    delta = (moment - now).total_seconds()
    relative = f"in {describe_age(delta)}" if delta >= 0 else f"{describe_age(-delta)} ago"
    return f"{moment.astimezone():%H:%M:%S %Z} ({relative})"


def _lease_cell(slot: SlotStatus) -> str:
    lease = slot.lease
    if lease is None:
        return "-"
    paired = ", paired" if lease.paired else ""
    return (
        f"{lease.kind} {lease.variant} on {lease.track_id}\nlease {lease.id[:8]}, seed {lease.seed}{paired}"
    )


def _progress_cell(slot: SlotStatus, now: datetime) -> str:
    progress = slot.progress
    if progress is None:
        return "-"
    parts = [
        progress.phase + (f" ({progress.run})" if progress.run and slot.lease and slot.lease.paired else "")
    ]
    if progress.step is not None:
        parts.append(f"step {progress.step}")
    if progress.loss is not None:
        parts.append(f"loss {progress.loss:.4f}")
    text = ", ".join(parts)
    if progress.eta is not None and progress.phase == "training":
        text += f"\nETA {_clock_time(progress.eta, now)}"
    return text


def _why_cell(slot: SlotStatus, now: datetime) -> str:
    lines = [slot.reason or ""]
    if slot.until is not None:
        lines.append(f"until {_clock_time(slot.until, now)}")
    return "\n".join(line for line in lines if line) or "-"


def render_report(report: StatusReport, *, now: datetime | None = None) -> RenderableType:
    """`worker status` for a person: one line about the worker, a table of slots, today's totals."""
    now = now or _now()
    worker = report.worker
    outbox = report.outbox
    backlog = f"outbox: {_count(outbox.pending, 'result')} waiting for the coordinator" + (
        f" (oldest {describe_age((now - outbox.oldest).total_seconds())} old)" if outbox.oldest else ""
    )
    if outbox.refused:
        backlog += f", {outbox.refused} refused (see {report.home}/outbox/refused)"
    if worker is None:
        return Group(Text(report.note or "not running", style="yellow"), Text(backlog))
    who = f"{worker.name or '?'} ({worker.account or '?'})"
    per_gpu = any(slot.name is not None for slot in worker.slots)  # a `join --gpus` home
    if report.running:
        up = describe_age((now - worker.started_at).total_seconds())
        stopping = ", stopping after this lease" if worker.stopping else ""
        head = Text(f"worker {who}: running{stopping}, pid {worker.pid}, up {up}", style="bold green")
    else:
        head = Text(f"worker {who}: {report.note}", style="bold yellow")
    about = Text(
        f"{worker.coordinator}, worker {short_hash(worker.worker_id or '') or ('one per GPU' if per_gpu else '-')},"
        f" {worker.hardware_class}, agent {worker.agent}, release {worker.worker_version}",
        style="dim",
    )
    table = Table(show_edge=False, box=None, pad_edge=False, header_style="bold")
    columns = ["gpu", "worker"] if per_gpu else ["slot"]
    for column in (*columns, "state", "lease", "progress", "why / until"):
        table.add_column(column)
    for slot in worker.slots:
        worker_cell = [f"{slot.name or '?'}\n{short_hash(slot.worker_id or '') or '-'}"] if per_gpu else []
        table.add_row(
            str(slot.slot),
            *worker_cell,
            slot.state,
            _lease_cell(slot),
            _progress_cell(slot, now),
            _why_cell(slot, now),
        )
    today = worker.today
    unit = "GPU" if worker.device == "gpu" else "CPU"
    totals = (
        f"today ({today.day.isoformat()} UTC): {_count(today.experiments, 'experiment')},"
        f" {_count(today.candidates, 'claimed improvement')} ({today.verified} verified),"
        f" {_count(today.verify_runs, 'verify run')}, {today.device_hours:.2f} {unit}-hours"
    )
    if today.failed or today.released:
        totals += f"; {today.failed} failed, {today.released} handed back unrun"
    return Group(head, about, table, Text(totals), Text(backlog))
