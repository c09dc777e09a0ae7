"""The supervisor: the worker's side of a run. It starts the sandbox, keeps the clocks, feeds the
scorer and collects the outcome. It runs in the worker's process and never runs variant code.

    supervisor ──spawn──> [sandbox] scorer ──spawn──> host (the variant's process)
        ^   events (claims: progress, train_started, train_finished)  ──────────┘
        ├── control: begin + val bytes + held-out windows ──> scorer
        └── result <── scorer

The watch loop is a timed wait (rq's `monitor_work_horse`): each tick it reads the host's events,
polls `should_abort`, and checks the deadline of the phase the run is in. Every deadline and every
measured second is on this side's clock:

- starting: until the host says `train_started` (sent before any variant code is imported).
- training: from that event. At budget + grace the sandbox is killed (`budget_exceeded`). When
  the host says `train_finished`, training time is what this side measured; over budget + a small
  tolerance the run is invalid (`over_budget`): the grace is for shutting down, not for training.
- evaluating: only now does the scorer get the val shard (and held-out windows), and the run has
  the evaluation timeout. The scorer bounds each forward itself.
- A `guard` event (the run-time guard refused something) ends the run at once: `rejected`.

Events are claims of a process that may run anything: each is parsed with bounds, and a field
out of range ends the run (`report_out_of_range`). Only the standard library, shared.track_spec,
shared.run_codes and this package's sandbox, channels and process tree: this runs wherever a
worker does.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shared import run_codes as codes
from shared.track_spec import TrackSpec
from worker.execution import process_tree
from worker.execution.channels import LineReader, encode
from worker.execution.reasons import public_reason
from worker.execution.sandbox import PROJECT_ROOT, Sandbox, human_bytes
from worker.execution.timing import eval_timeout, over_budget_tolerance

STARTUP_TIMEOUT_S = 120.0
EXIT_GRACE_S = 30.0
TICK_S = 0.2
REAP_TIMEOUT_S = 10.0
LOG_TAIL_BYTES = 4096
MAX_EVENT_BYTES = 4096
MAX_STEP = 2**53 - 1
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TRITON_INTERPRET", "CUDA_VISIBLE_DEVICES")
# Exit statuses above this mean "killed by signal (status - 128)" when bubblewrap relays them.
SIGNAL_EXIT_BASE = 128
SANDBOX_ERROR_PREFIXES = ("bwrap:", "unshare:", "sandbox: error:")
OUT_OF_MEMORY_MARKS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "out of memory")
FILE_TOO_LARGE_MARK = "File too large"
PROCESS_LIMIT_MARKS = ("BlockingIOError", "Resource temporarily unavailable", "can't start new thread")


@dataclass
class Progress:
    phase: str  # "training", then "evaluating"
    step: int | None
    loss: float | None
    elapsed_s: float  # seconds since training started, on this side's clock
    time_budget_s: float | None


@dataclass
class SupervisedRun:
    """What the supervisor saw: the scorer's result (or why there is none) and its own measurements."""

    status: str
    code: str | None
    reason: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""
    wall_seconds: float = 0.0
    public_reason: str | None = None  # what the report may carry (worker.execution.reasons)


class _Ended(Exception):
    """The watch loop decided the run: the sandbox is killed and this is the outcome.

    `public` is the reason a report may carry; None means `reason` itself (text this side wrote).
    """

    def __init__(self, status: str, code: str, reason: str, public: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.public = status, code, reason, public


def supervise(
    *,
    train_py: Path,
    spec: TrackSpec,
    data_dir: Path,
    seed: int,
    workdir: Path,
    device: str,
    threads: int | None,
    sandbox: Sandbox,
    holdout: bytes | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
    guard: bool = True,
) -> SupervisedRun:
    """Run one variant end to end; never raises for anything the variant does."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "spec.json"
    spec_path.write_text(spec.dumps(), encoding="utf-8")
    log_path = workdir / "harness.log"
    events_read, events_write = os.pipe()
    control_read, control_write = os.pipe()
    result_read, result_write = os.pipe()
    command = [
        sys.executable, "-m", "worker.execution.scorer",
        "--spec", str(spec_path.resolve()), "--train-py", str(train_py.resolve()),
        "--data-dir", str(data_dir.resolve()), "--seed", str(seed), "--device", device,
        "--events-fd", str(events_write), "--control-fd", str(control_read), "--result-fd", str(result_write),
    ]  # fmt: skip
    if threads is not None:
        command += ["--threads", str(threads)]
    if not guard or not sandbox.config.guard:
        command.append("--no-guard")
    elif not sandbox.seccomp_active:
        command.append("--no-seccomp")
    for program in sandbox.toolchain:
        command += ["--toolchain", str(program)]
    # What the sandbox shows of the data folder: the train shards and the byte table, never the val.
    readable = [data_dir / digest for digest in (*spec.assets.train, spec.assets.token_bytes)]
    if not train_py.resolve().is_relative_to(workdir.resolve()):
        readable.append(train_py)

    started = time.monotonic()
    child_ends = [events_write, control_read, result_write]
    watch = _Watch(spec=spec, on_progress=on_progress, should_abort=should_abort, device=device)
    ended: _Ended | None = None
    result: dict[str, Any] | None = None
    try:
        with log_path.open("wb") as log:
            child = _spawn(
                command,
                workdir=workdir,
                env=harness_env(workdir=workdir, threads=threads),
                log=log,
                pass_fds=tuple(child_ends),
                sandbox=sandbox,
                read_only=readable,
                hidden=[data_dir],
            )
            for fd in child_ends:
                os.close(fd)
            child_ends.clear()
            feeder = _Feeder(control_write, val_path=data_dir / spec.assets.val, holdout=holdout)
            try:
                result = watch.follow(child, events=LineReader(events_read, max_line=MAX_EVENT_BYTES),
                                      results=LineReader(result_read, max_line=1 << 20), feeder=feeder)  # fmt: skip
            except _Ended as exc:
                ended = exc
            finally:
                feeder.close()
                _kill_tree(child)
    finally:
        for fd in (events_read, result_read, *child_ends):
            with contextlib.suppress(OSError):
                os.close(fd)
    log_tail = _tail(log_path)
    wall = time.monotonic() - started
    if ended is None and watch.host_failure is not None:
        ended = watch.host_failure  # the host's own account of its failure, when the scorer has none better
    if ended is not None:
        run = SupervisedRun(
            status=ended.status,
            code=ended.code,
            reason=ended.reason,
            log_tail=log_tail,
            wall_seconds=wall,
            public_reason=ended.public,
        )
    elif result is not None:
        run = _from_result(result, log_tail=log_tail, wall=wall)
    else:
        run = _no_result(
            child.returncode, log_tail=log_tail, wall=wall, variant_ran=watch.phase != "starting"
        )
    run.metrics.update(watch.measured())
    if watch.startup_seconds is not None:
        run.env["startup_s"] = round(watch.startup_seconds, 3)
    if run.status == codes.CRASHED and run.code in (codes.VARIANT_CRASHED, codes.NO_RESULT, None):
        limited = _limit_hit(run.reason, log_tail, sandbox)
        if limited is not None:
            published = run.public_reason or run.reason
            run.code, (headline, run.reason) = limited[0], limited[1:]
            run.public_reason = f"{headline}: {published}" if published else headline
    if run.public_reason is None:
        run.public_reason = run.reason
    return run


def _spawn(
    command: list[str],
    *,
    workdir: Path,
    env: dict[str, str],
    log: IO[bytes],
    pass_fds: tuple[int, ...],
    sandbox: Sandbox,
    read_only: Sequence[Path],
    hidden: Sequence[Path],
) -> subprocess.Popen[bytes]:
    sandbox.prepare_workdir(workdir)
    wrapped = sandbox.wrap(command, workdir=workdir, read_only=read_only, hidden=hidden)
    return subprocess.Popen(
        wrapped,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
        start_new_session=True,  # its own process group: a kill reaches everything the run started
    )


def harness_env(*, workdir: Path, threads: int | None) -> dict[str, str]:
    """A scrubbed environment: no credentials, proxies or tokens of the volunteer reach the run.

    HOME and TMPDIR are the scratch folder, so compiler caches (Triton, Inductor) start empty on
    every run: every run pays the same compile time inside its budget.
    """
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        HOME=str(workdir.resolve()),
        TMPDIR=str(workdir.resolve()),
        PYTHONPATH=str(PROJECT_ROOT),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        # Inductor compiles in worker processes by default; the guard allows no processes.
        TORCHINDUCTOR_COMPILE_THREADS="1",
    )
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


class _Feeder:
    """Sends the scorer its `begin` and the bytes it scores on, once, when training has ended.

    A thread writes, with non-blocking writes and a timed wait for room, so the watch loop keeps
    the clocks while a large val shard goes through the pipe, and `close()` can stop a writer
    whose reader stalled.
    """

    def __init__(self, fd: int, *, val_path: Path, holdout: bytes | None) -> None:
        self._fd = fd
        self._val_path = val_path
        self._holdout = holdout or b""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="scorer-feed", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        else:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def _write(self) -> None:
        try:
            try:
                val = self._val_path.read_bytes()
            except OSError:
                val = b""  # the scorer reports a val shard that does not match the track
            header = encode({"op": "begin", "val_bytes": len(val), "holdout_bytes": len(self._holdout)})
            os.set_blocking(self._fd, False)
            for data in (header, val, self._holdout):
                view = memoryview(data)
                while view:
                    if self._stop.is_set():
                        return
                    if select.select([], [self._fd], [], TICK_S)[1]:
                        with contextlib.suppress(BlockingIOError):
                            view = view[os.write(self._fd, view) :]
        except OSError:
            pass  # the scorer is gone; its absence is reported
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)


class _Watch:
    """The timed wait loop: one phase at a time, each with its own deadline."""

    def __init__(
        self,
        *,
        spec: TrackSpec,
        on_progress: Callable[[Progress], None] | None,
        should_abort: Callable[[], bool] | None,
        device: str = "cpu",
    ) -> None:
        self._spec = spec
        self._device = device
        self._on_progress = on_progress
        self._should_abort = should_abort
        self.phase = "starting"
        self.train_started_at: float | None = None
        self.train_seconds: float | None = None
        self.eval_started_at: float | None = None
        self.eval_seconds: float | None = None
        self.steps: int | None = None
        self.tokens: int | None = None
        self.host_failure: _Ended | None = None
        self.startup_seconds: float | None = None
        self._spawned_at = time.monotonic()
        self._deadline = self._spawned_at + STARTUP_TIMEOUT_S
        self._overrun = _Ended(
            codes.CRASHED, codes.STARTUP_TIMEOUT, f"did not start training within {STARTUP_TIMEOUT_S:.0f}s"
        )

    def follow(
        self, child: subprocess.Popen[bytes], *, events: LineReader, results: LineReader, feeder: _Feeder
    ) -> dict[str, Any] | None:
        """Return the scorer's result (None when it wrote none); raise _Ended when the run must end."""
        while True:
            watched = [fd for fd, reader in ((events.fd, events), (results.fd, results)) if not reader.closed]
            if watched:
                select.select(watched, [], [], TICK_S)
            else:
                time.sleep(TICK_S)
            for line in events.poll_lines():
                self._handle(line, feeder)
            lines = results.poll_lines()
            if lines:
                if self.eval_started_at is not None:
                    self.eval_seconds = time.monotonic() - self.eval_started_at
                return _parse_result(lines[0])
            if results.closed or child.poll() is not None:
                for line in events.poll_lines():
                    self._handle(line, feeder)
                lines = results.poll_lines()
                return _parse_result(lines[0]) if lines else None
            if self._should_abort is not None and self._should_abort():
                raise _Ended(codes.CRASHED, codes.ABORTED, "aborted")
            if time.monotonic() > self._deadline:
                raise self._overrun

    def measured(self) -> dict[str, Any]:
        """The metrics this side measured or bounded, which override anything the run wrote."""
        out: dict[str, Any] = {"steps": self.steps, "tokens": self.tokens}
        if self.train_seconds is not None:
            out["train_seconds"] = round(self.train_seconds, 3)
        if self.eval_seconds is not None:
            out["eval_seconds"] = round(self.eval_seconds, 3)
        return out

    def _handle(self, line: bytes, feeder: _Feeder) -> None:
        try:
            event = json.loads(line)
            name = event["event"]
        except (ValueError, TypeError, KeyError):
            raise _Ended(
                codes.REJECTED, codes.REPORT_OUT_OF_RANGE, "the variant's process wrote a malformed event"
            ) from None
        now = time.monotonic()
        spec = self._spec
        if name == "guard":
            code = _code(event.get("code"), codes.GUARD_PROCESS)
            raise _Ended(codes.REJECTED, code, _text(event.get("reason")), public_reason(code, None))
        if name == "setup_failed":
            raise _Ended(
                codes.CRASHED,
                codes.HARNESS_SETUP_FAILED,
                f"the run could not start: {_text(event.get('reason'))}",
            )
        if name == "train_started" and self.phase == "starting":
            self.phase, self.train_started_at = "training", now
            self.startup_seconds = now - self._spawned_at
            self._deadline = now + spec.time_budget_s + spec.grace_s
            self._overrun = _Ended(
                codes.CRASHED,
                codes.BUDGET_EXCEEDED,
                f"exceeded time budget ({spec.time_budget_s:g}s + {spec.grace_s:g}s grace)",
            )
        elif name == "train_finished" and self.phase == "training":
            assert self.train_started_at is not None
            self.train_seconds = now - self.train_started_at
            self.steps = _count(event.get("steps"), "steps")
            self.tokens = _count(event.get("tokens"), "tokens")
            limit = spec.time_budget_s + over_budget_tolerance(spec.time_budget_s)
            if self.train_seconds > limit:
                raise _Ended(
                    codes.CRASHED,
                    codes.OVER_BUDGET,
                    f"train() returned after {self.train_seconds:.2f}s, over the budget of {spec.time_budget_s:g}s"
                    f" (+{over_budget_tolerance(spec.time_budget_s):g}s tolerance): the grace is for shutting"
                    " down, not for training",
                )
            self.phase = "evaluating"
            self.eval_started_at = now
            self._deadline = now + eval_timeout(spec, self._device)
            self._overrun = _Ended(
                codes.CRASHED,
                codes.EVAL_TIMEOUT,
                f"evaluation took longer than {eval_timeout(spec, self._device):g}s",
            )
            feeder.begin()
        elif name == "failed" and self.phase == "training":
            assert self.train_started_at is not None
            self.train_seconds = now - self.train_started_at
            self.steps = _count(event.get("steps"), "steps")
            self.tokens = _count(event.get("tokens"), "tokens")
            self.phase = "failed"  # the scorer reports the host gone; this is why
            status = (
                event.get("status")
                if event.get("status") in (codes.CRASHED, codes.REJECTED)
                else codes.CRASHED
            )
            code = _code(event.get("code"), codes.VARIANT_CRASHED)
            self.host_failure = _Ended(
                str(status), code, _text(event.get("reason")), public_reason(code, event.get("parts"))
            )
        elif name == "progress" and self.phase == "training":
            step = _count(event.get("step"), "step")
            loss = event.get("loss")
            if loss is not None and (
                isinstance(loss, bool) or not isinstance(loss, int | float) or abs(loss) > 1e9
            ):
                raise _Ended(
                    codes.REJECTED,
                    codes.REPORT_OUT_OF_RANGE,
                    "the variant reported a loss that is not a number of sane size",
                )
            if self._on_progress is not None:
                assert self.train_started_at is not None
                self._on_progress(
                    Progress(
                        phase=self.phase,
                        step=step,
                        loss=float(loss) if loss is not None else None,
                        elapsed_s=now - self.train_started_at,
                        time_budget_s=spec.time_budget_s,
                    )
                )
            return
        else:
            return  # out of order or unknown: ignored, the deadlines stay as they are
        if self._on_progress is not None and name in ("train_started", "train_finished"):
            self._on_progress(
                Progress(
                    phase=self.phase,
                    step=self.steps,
                    loss=None,
                    elapsed_s=now - (self.train_started_at or now),
                    time_budget_s=spec.time_budget_s,
                )
            )


def _count(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STEP:
        raise _Ended(
            codes.REJECTED,
            codes.REPORT_OUT_OF_RANGE,
            f"the variant reported {name} out of range (a whole number from 0 to {MAX_STEP})",
        )
    return value


def _code(value: object, default: str) -> str:
    text = str(value) if isinstance(value, str) else ""
    return text if text in codes.LAYER_OF or text == codes.CONTRACT_VIOLATION else default


def _text(value: object) -> str:
    return (value if isinstance(value, str) else "no reason given")[:2000]


def _parse_result(line: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _from_result(result: dict[str, Any], *, log_tail: str, wall: float) -> SupervisedRun:
    status = result.get("status")
    if status not in codes.STATUSES:
        return SupervisedRun(codes.CRASHED, codes.UNREADABLE_RESULT, "the scorer wrote an unreadable result",
                             log_tail=log_tail, wall_seconds=wall)  # fmt: skip
    env = dict(result.get("env") or {})
    if isinstance(result.get("eval"), dict):
        env["eval"] = result["eval"]
    host = result.get("host") or {}
    metrics = dict(result.get("metrics") or {})
    if metrics.get("peak_memory_bytes") is None and isinstance(host.get("peak_rss_bytes"), int):
        metrics["peak_memory_bytes"] = host["peak_rss_bytes"]
    code = result.get("code")
    reason = result.get("reason")
    # A failure the host answered with is relayed by the scorer as the host told it.
    published = public_reason(str(code), result.get("parts")) if result.get("from_host") else reason
    return SupervisedRun(
        status=str(status),
        code=code,
        reason=reason,
        metrics=metrics,
        env=env,
        log_tail=log_tail,
        wall_seconds=wall,
        public_reason=published,
    )


def _no_result(returncode: int | None, *, log_tail: str, wall: float, variant_ran: bool) -> SupervisedRun:
    returncode = -1 if returncode is None else returncode
    last_line = next((line.strip() for line in reversed(log_tail.splitlines()) if line.strip()), "")[:300]
    # Only before any variant code ran can the log's last line be the sandbox's own.
    if not variant_ran and last_line.startswith(SANDBOX_ERROR_PREFIXES):
        return SupervisedRun(codes.CRASHED, codes.SANDBOX_FAILED, f"the sandbox could not start the run: {last_line}",
                             log_tail=log_tail, wall_seconds=wall)  # fmt: skip
    if returncode < 0 or returncode > SIGNAL_EXIT_BASE:
        number = -returncode if returncode < 0 else returncode - SIGNAL_EXIT_BASE
        return SupervisedRun(codes.CRASHED, codes.KILLED_BY_SIGNAL, f"the run was killed by signal {_signal_name(number)}",
                             log_tail=log_tail, wall_seconds=wall)  # fmt: skip
    # Not the log's last line: the variant writes to the same log, and the reason leaves the machine.
    return SupervisedRun(
        codes.CRASHED,
        codes.NO_RESULT,
        f"the run ended with code {returncode} and no result (the run's log, on the worker, says why)",
        log_tail=log_tail,
        wall_seconds=wall,
    )


def _limit_hit(reason: str | None, log_tail: str, sandbox: Sandbox) -> tuple[str, str, str] | None:
    """(code, headline, reason) when a crash was a resource running out, said plainly; else None."""
    text = f"{reason or ''}\n{log_tail[-1500:]}"
    headline: str | None = None
    if any(mark in text for mark in OUT_OF_MEMORY_MARKS):
        limit = sandbox.memory_limit_bytes
        code, headline = (
            codes.OUT_OF_MEMORY,
            "out of memory"
            + (f" (the sandbox caps memory at {human_bytes(limit)})" if limit is not None else ""),
        )
    elif FILE_TOO_LARGE_MARK in text:
        code, headline = (
            codes.FILE_TOO_LARGE,
            "a file grew too large"
            + (
                f" (the sandbox caps files at {human_bytes(sandbox.config.file_bytes)})"
                if sandbox.config.limits
                else ""
            ),
        )
    else:
        processes = sandbox.report.layer("processes")
        if processes.active and reason and any(mark in reason for mark in PROCESS_LIMIT_MARKS):
            code, headline = (
                codes.PROCESS_LIMIT,
                f"the sandbox's process limit was reached ({processes.detail})",
            )
    if headline is None:
        return None
    return code, headline, f"{headline}: {reason}"


def _kill_tree(child: subprocess.Popen[bytes]) -> None:
    """Kill everything the run started, also after a clean exit, and wait until it is gone.

    The process group alone is not enough: a process can start a session of its own, and a parent
    that dies orphans its children out of the tree. So the tree is stopped before it is killed
    (worker.execution.process_tree), and since the kernel finishes those kills (and a PID
    namespace's teardown) after `wait()` has returned, this waits until each one has exited.
    """
    process_tree.kill_tree(child.pid, group=True, reap_timeout_s=REAP_TIMEOUT_S)
    child.wait()


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return handle.read().decode("utf-8", errors="replace")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
