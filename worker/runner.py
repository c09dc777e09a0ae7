"""The parent side of a training run: spawn the harness, watch it, kill it when it overruns.

The harness runs as `python -m worker.harness` in its own process group, in a scratch working
directory, with a scrubbed environment, inside the sandbox it is given (worker.sandbox). Its
progress arrives as JSON lines on a private pipe; its stdout and stderr go to `harness.log` in the
workdir. The watch loop is a timed wait (rq's `monitor_work_horse`): each tick it reads progress,
polls `should_abort`, and checks the deadline of the phase the child is in. Deadlines are counted
on this side's clock from when each phase's event arrives, and the budget is taken from the spec
this side holds, never from the child.

The val shard reaches the harness on a second pipe (`--val-fd`), written from a thread only once
`train_finished` has arrived; the sandbox does not mount the file. So the bytes the model is scored
on do not exist inside the sandbox while the variant trains.

Only the standard library, `shared.track_spec` and `worker.sandbox`: this runs wherever the
harness does.
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared.track_spec import TrackSpec
from worker.sandbox import Sandbox, human_bytes

# Longest wait from spawn to `train_started`: interpreter start, torch import, mapping the shards.
STARTUP_TIMEOUT_S = 120.0
# Time the harness may take to write its result and exit after `eval_finished`.
EXIT_GRACE_S = 30.0
TICK_S = 0.2
# How long the kill waits for the run's processes to be gone after the harness itself is reaped.
REAP_TIMEOUT_S = 10.0
LOG_TAIL_BYTES = 4096
# The folder holding the `worker` and `shared` packages, put on the child's PYTHONPATH.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Environment variables passed through to the harness when set; everything else is dropped.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TRITON_INTERPRET", "CUDA_VISIBLE_DEVICES")

VAL_CHUNK_BYTES = 1 << 20

CRASHED = "crashed"
# Stable codes for the outcomes this side decides (HarnessResult.code).
BUDGET_EXCEEDED = "budget_exceeded"
EVAL_TIMEOUT = "eval_timeout"
STARTUP_TIMEOUT = "startup_timeout"
EXIT_TIMEOUT = "exit_timeout"
ABORTED = "aborted"
KILLED_BY_SIGNAL = "killed_by_signal"
NO_RESULT = "no_result"
HARNESS_SETUP_FAILED = "harness_setup_failed"
SANDBOX_FAILED = "sandbox_failed"
UNREADABLE_RESULT = "unreadable_result"
OUT_OF_MEMORY = "out_of_memory"
FILE_TOO_LARGE = "file_too_large"
PROCESS_LIMIT = "process_limit"
# The harness's exit status when it could not start or finish for the worker's reasons.
HARNESS_SETUP_EXIT = 2
# Exit statuses above this mean "killed by signal (status - 128)" when bubblewrap relays them.
SIGNAL_EXIT_BASE = 128
# How the sandbox's own failures begin (bubblewrap, unshare, the limits launcher).
SANDBOX_ERROR_PREFIXES = ("bwrap:", "unshare:", "sandbox: error:")
OUT_OF_MEMORY_MARKS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "out of memory")
FILE_TOO_LARGE_MARK = "File too large"
# fork() and thread starts fail with EAGAIN once RLIMIT_NPROC is reached.
PROCESS_LIMIT_MARKS = ("BlockingIOError: [Errno 11] Resource temporarily unavailable", "can't start new thread")


@dataclass
class Progress:
    phase: str  # "training", then "evaluating", then "reporting" (the harness is writing its result)
    step: int | None
    loss: float | None
    elapsed_s: float  # seconds since training started, on this side's clock
    time_budget_s: float | None


@dataclass
class HarnessResult:
    status: str  # "ok", "crashed" or "rejected" (shared.protocol.RunStatus)
    reason: str | None
    metrics: dict[str, Any]  # shared.protocol.RunMetrics fields
    env: dict[str, Any]
    log_tail: str  # the last few KB of the harness's stdout and stderr
    wall_seconds: float
    code: str | None = None  # a stable code when this side decided the outcome (see the constants above)


class _Killed(Exception):
    """The watch loop killed the child; the message is the run's reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def run_harness(
    *,
    train_py: Path,
    spec: TrackSpec,
    data_dir: Path,
    seed: int,
    workdir: Path,
    device: str = "auto",
    threads: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
    eval_timeout_s: float | None = None,
    sandbox: Sandbox | None = None,
) -> HarnessResult:
    """Train and score `train_py` in a harness subprocess; never raises for anything the variant does.

    `should_abort` is polled every tick (a fifth of a second), so it may also do periodic work
    such as heartbeats. The result is "crashed" with a reason naming the cause when the child
    overruns a deadline, is aborted, is killed by a signal or exits without writing a result.
    `sandbox` None runs the harness with its own session and a scrubbed environment only;
    worker.localrun, the path every lease takes, always passes one.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "spec.json"
    spec_path.write_text(spec.dumps(), encoding="utf-8")
    result_path = workdir / "result.json"
    result_path.unlink(missing_ok=True)  # a stale result must never pass for this run's
    log_path = workdir / "harness.log"
    command = [
        sys.executable,
        "-m",
        "worker.harness",
        "--train-py",
        str(train_py.resolve()),
        "--spec",
        str(spec_path.resolve()),
        "--data-dir",
        str(data_dir.resolve()),
        "--seed",
        str(seed),
        "--device",
        device,
        "--result",
        str(result_path.resolve()),
    ]
    if threads is not None:
        command += ["--threads", str(threads)]
    # What the sandbox shows of the data folder: the train shards and the byte table, never the val.
    readable = [data_dir / digest for digest in (*spec.assets.train, spec.assets.token_bytes)]
    if not train_py.resolve().is_relative_to(workdir.resolve()):
        readable.append(train_py)

    started = time.monotonic()
    progress_read, progress_write = os.pipe()
    val_read, val_write = os.pipe()
    val_feed = _ValFeed(data_dir / spec.assets.val, val_write)
    inherited = [progress_write, val_read]  # the child's ends, closed here once it has them
    try:
        with log_path.open("wb") as log:
            child = spawn(
                [*command, "--progress-fd", str(progress_write), "--val-fd", str(val_read)],
                workdir=workdir,
                env=harness_env(workdir=workdir, threads=threads),
                log=log,
                pass_fds=(progress_write, val_read),
                sandbox=sandbox,
                read_only=readable,
                hidden=[data_dir],
            )
            for fd in inherited:
                os.close(fd)
            inherited.clear()
            watch = _Watch(
                spec=spec,
                eval_timeout_s=eval_timeout_s
                if eval_timeout_s is not None
                else max(60.0, spec.time_budget_s),
                on_progress=on_progress,
                should_abort=should_abort,
                on_train_finished=val_feed.start,
            )
            killed: _Killed | None = None
            try:
                watch.follow(child, progress_read)
            except _Killed as exc:
                killed = exc
            finally:
                _kill_group(child)
    finally:
        val_feed.close()
        for fd in (progress_read, *inherited):
            os.close(fd)
    return _collect(
        returncode=child.returncode,
        killed=killed,
        result_path=result_path,
        log_tail=_tail(log_path),
        wall_seconds=time.monotonic() - started,
        sandbox=sandbox,
    )


def spawn(
    command: list[str],
    *,
    workdir: Path,
    env: dict[str, str],
    log: IO[bytes],
    pass_fds: tuple[int, ...],
    sandbox: Sandbox | None = None,
    read_only: Sequence[Path] = (),
    hidden: Sequence[Path] = (),
) -> subprocess.Popen[bytes]:
    """Start the harness, inside `sandbox` when given (see Sandbox.wrap for `read_only` and `hidden`)."""
    if sandbox is not None:
        sandbox.prepare_workdir(workdir)
        command = sandbox.wrap(command, workdir=workdir, read_only=read_only, hidden=hidden)
    return subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
        # Its own process group, so a kill reaches anything the variant started too.
        start_new_session=True,
    )


def harness_env(*, workdir: Path, threads: int | None) -> dict[str, str]:
    """A scrubbed environment: no credentials, proxies or tokens of the volunteer reach the variant.

    HOME is the scratch workdir, so compiler caches (Triton, Inductor) start empty on every run:
    every run pays the same compile time inside its budget.
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
    )
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


class _Watch:
    """The timed wait loop: one phase at a time, each with its own deadline."""

    def __init__(
        self,
        *,
        spec: TrackSpec,
        eval_timeout_s: float,
        on_progress: Callable[[Progress], None] | None,
        should_abort: Callable[[], bool] | None,
        on_train_finished: Callable[[], None] | None = None,
    ) -> None:
        self._spec = spec
        self._eval_timeout_s = eval_timeout_s
        self._on_progress = on_progress
        self._should_abort = should_abort
        self._on_train_finished = on_train_finished
        self._buffer = b""
        self._phase = "starting"
        self._train_started_at: float | None = None
        self._deadline = time.monotonic() + STARTUP_TIMEOUT_S
        self._overrun = _Killed(STARTUP_TIMEOUT, f"did not start training within {STARTUP_TIMEOUT_S:.0f}s")

    def follow(self, child: subprocess.Popen[bytes], progress_fd: int) -> None:
        """Return when the child exits; raise _Killed when it must be killed."""
        open_fd: int | None = progress_fd
        while True:
            if open_fd is not None:
                readable, _, _ = select.select([open_fd], [], [], TICK_S)
                if readable and not self._read(open_fd):
                    open_fd = None  # EOF: the child closed its end (exited, or about to)
            if child.poll() is not None:
                if open_fd is not None:
                    self._drain(open_fd)
                return
            if open_fd is None:
                time.sleep(TICK_S)
            if self._should_abort is not None and self._should_abort():
                raise _Killed(ABORTED, "aborted")
            if time.monotonic() > self._deadline:
                raise self._overrun

    def _drain(self, fd: int) -> None:
        """Handle what the child wrote before it exited (without blocking on a lingering writer)."""
        while select.select([fd], [], [], 0)[0] and self._read(fd):
            pass

    def _read(self, fd: int) -> bool:
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._handle(line)
        return True

    def _handle(self, line: bytes) -> None:
        try:
            event = json.loads(line)
            name = event["event"]
        except (ValueError, TypeError, KeyError):
            return  # not ours; the harness writes only well-formed events
        now = time.monotonic()
        spec = self._spec
        if name == "train_started" and self._phase == "starting":
            self._phase, self._train_started_at = "training", now
            self._deadline = now + spec.time_budget_s + spec.grace_s
            self._overrun = _Killed(
                BUDGET_EXCEEDED, f"exceeded time budget ({spec.time_budget_s:g}s + {spec.grace_s:g}s grace)"
            )
        elif name == "train_finished" and self._phase == "training":
            self._phase = "evaluating"
            self._deadline = now + self._eval_timeout_s
            self._overrun = _Killed(EVAL_TIMEOUT, f"evaluation took longer than {self._eval_timeout_s:g}s")
            if self._on_train_finished is not None:
                self._on_train_finished()
        elif name == "eval_finished" and self._phase == "evaluating":
            self._phase = "reporting"
            self._deadline = now + EXIT_GRACE_S
            self._overrun = _Killed(
                EXIT_TIMEOUT, f"did not exit within {EXIT_GRACE_S:g}s of finishing evaluation"
            )
        elif name != "progress" or self._phase != "training":
            return  # out of order: ignored, the deadlines stay as they are
        if self._on_progress is not None:
            self._on_progress(
                Progress(
                    phase=self._phase,
                    step=_int_or_none(event.get("step")),
                    loss=_float_or_none(event.get("loss")),
                    elapsed_s=now - (self._train_started_at or now),
                    time_budget_s=spec.time_budget_s,
                )
            )


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """Kill everything the run started, also after a clean exit, and wait until it is gone.

    The process group alone is not enough: a variant can start a process in a session of its
    own. So every descendant of the child is found first (by parent pid, through /proc) and
    killed by pid too; and since the kernel finishes those kills (and a PID namespace's teardown)
    after `wait()` has returned for the child, this waits until each one has exited. A process
    that left the tree before the kill (its parent gone, it is re-parented outside) escapes this,
    which is why the sandbox gives the run a PID namespace of its own.
    """
    tree = _descendants(child.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(child.pid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + REAP_TIMEOUT_S
    while time.monotonic() < deadline and any(_running(pid, started) for pid, started in tree.items()):
        time.sleep(0.01)


def _descendants(root: int) -> dict[int, str]:
    """{pid: start time} of every live descendant of `root` (the start time tells a reused pid)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(entry)
        if fields is not None:
            pid = int(entry.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            started[pid] = fields[19]
    found: dict[int, str] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid not in found and pid in started:
            found[pid] = started[pid]
            stack.extend(children.get(pid, []))
    return found


def _running(pid: int, started: str) -> bool:
    """Whether `pid` is still the process that started at `started`, and not yet a zombie."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return fields is not None and fields[19] == started and fields[0] not in ("Z", "X")


def _stat_fields(path: Path) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...] (field 3 on), or None if gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


class _ValFeed:
    """Writes the val shard's bytes into the harness's val pipe, once `start()` is called.

    `start()` comes with `train_finished`, so while the variant trains the pipe holds nothing. A
    thread writes (the harness reads while this side keeps watching the clock); `close()` stops it
    and closes the write end, which the harness sees as end of file.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self._path = path
        self._fd = fd
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="val-feed", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is None:
            os.close(self._fd)
            return
        self._stop.set()
        self._thread.join()

    def _write(self) -> None:
        try:
            with self._path.open("rb") as source:
                while chunk := source.read(VAL_CHUNK_BYTES):
                    self._write_all(memoryview(chunk))
        except OSError:
            pass  # the harness is gone (broken pipe) or the file is: it reports a short val shard
        finally:
            os.close(self._fd)

    def _write_all(self, data: memoryview) -> None:
        # Non-blocking writes and a timed wait for room, so `close()` can stop a writer whose
        # reader stalled (a variant process that escaped the kill may still hold the read end).
        os.set_blocking(self._fd, False)
        while data:
            if self._stop.is_set():
                raise BrokenPipeError("the run is over")
            if select.select([], [self._fd], [], TICK_S)[1]:
                with contextlib.suppress(BlockingIOError):
                    data = data[os.write(self._fd, data) :]


def _collect(
    *,
    returncode: int,
    killed: _Killed | None,
    result_path: Path,
    log_tail: str,
    wall_seconds: float,
    sandbox: Sandbox | None,
) -> HarnessResult:
    def crashed(code: str, reason: str) -> HarnessResult:
        return HarnessResult(
            status=CRASHED,
            reason=reason,
            metrics={},
            env={},
            log_tail=log_tail,
            wall_seconds=wall_seconds,
            code=code,
        )

    if killed is not None:
        return crashed(killed.code, str(killed))
    last_line = next((line.strip() for line in reversed(log_tail.splitlines()) if line.strip()), "")
    wrapped_signal = sandbox is not None and returncode > SIGNAL_EXIT_BASE and not result_path.exists()
    if returncode < 0 or wrapped_signal:
        number = -returncode if returncode < 0 else returncode - SIGNAL_EXIT_BASE
        return crashed(KILLED_BY_SIGNAL, f"harness was killed by signal {_signal_name(number)}")
    if returncode != 0 or not result_path.exists():
        detail = f": {last_line}" if last_line else ""
        reason = f"harness exited with code {returncode} and wrote no result{detail}"
        if last_line.startswith(SANDBOX_ERROR_PREFIXES):
            return crashed(SANDBOX_FAILED, f"the sandbox could not start the harness: {last_line}")
        limited = _limit_hit(reason, sandbox)
        if limited is not None:
            return crashed(*limited)
        return crashed(HARNESS_SETUP_FAILED if returncode == HARNESS_SETUP_EXIT else NO_RESULT, reason)
    try:
        data = json.loads(result_path.read_text(encoding="utf-8"))
        result = HarnessResult(
            status=str(data["status"]),
            reason=data.get("reason"),
            metrics=dict(data.get("metrics") or {}),
            env=dict(data.get("env") or {}),
            log_tail=log_tail,
            wall_seconds=wall_seconds,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return crashed(UNREADABLE_RESULT, f"harness wrote an unreadable result: {exc}")
    limited = _limit_hit(result.reason, sandbox) if result.status == CRASHED else None
    if limited is not None:
        result.code, result.reason = limited
    return result


def _limit_hit(reason: str | None, sandbox: Sandbox | None) -> tuple[str, str] | None:
    """(code, reason) when a crash was a resource running out, said plainly; else None."""
    if not reason:
        return None
    if any(mark in reason for mark in OUT_OF_MEMORY_MARKS):
        limit = sandbox.memory_limit_bytes if sandbox is not None else None
        cap = f" (the sandbox caps memory at {human_bytes(limit)})" if limit is not None else ""
        return OUT_OF_MEMORY, f"out of memory{cap}: {reason}"
    if FILE_TOO_LARGE_MARK in reason:
        limit = sandbox.config.file_bytes if sandbox is not None and sandbox.config.limits else None
        cap = f" (the sandbox caps files at {human_bytes(limit)})" if limit is not None else ""
        return FILE_TOO_LARGE, f"a file grew too large{cap}: {reason}"
    processes = sandbox.report.layer("processes") if sandbox is not None else None
    if processes is not None and processes.active and any(mark in reason for mark in PROCESS_LIMIT_MARKS):
        return PROCESS_LIMIT, f"the sandbox's process limit was reached ({processes.detail}): {reason}"
    return None


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return handle.read().decode("utf-8", errors="replace")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
