"""The parent side of a training run: spawn the harness, watch it, kill it when it overruns.

The harness runs as `python -m worker.harness` in its own process group, in a scratch working
directory, with a scrubbed environment. Its progress arrives as JSON lines on a private pipe; its
stdout and stderr go to `harness.log` in the workdir. The watch loop is a timed wait (rq's
`monitor_work_horse`): each tick it reads progress, polls `should_abort`, and checks the deadline
of the phase the child is in. Deadlines are counted on this side's clock from when each phase's
event arrives, and the budget is taken from the spec this side holds, never from the child.

Only the standard library and `shared.track_spec`: this runs wherever the harness does.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared.track_spec import TrackSpec

# Longest wait from spawn to `train_started`: interpreter start, torch import, mapping the shards.
STARTUP_TIMEOUT_S = 120.0
# Time the harness may take to write its result and exit after `eval_finished`.
EXIT_GRACE_S = 30.0
TICK_S = 0.2
LOG_TAIL_BYTES = 4096
# The folder holding the `worker` and `shared` packages, put on the child's PYTHONPATH.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Environment variables passed through to the harness when set; everything else is dropped.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TRITON_INTERPRET", "CUDA_VISIBLE_DEVICES")

CRASHED = "crashed"


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


class _Killed(Exception):
    """The watch loop killed the child; the message is the run's reason."""


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
) -> HarnessResult:
    """Train and score `train_py` in a harness subprocess; never raises for anything the variant does.

    `should_abort` is polled every tick (a fifth of a second), so it may also do periodic work
    such as heartbeats. The result is "crashed" with a reason naming the cause when the child
    overruns a deadline, is aborted, is killed by a signal or exits without writing a result.
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

    started = time.monotonic()
    read_fd, write_fd = os.pipe()
    try:
        with log_path.open("wb") as log:
            child = spawn(
                [*command, "--progress-fd", str(write_fd)],
                workdir=workdir,
                env=harness_env(workdir=workdir, threads=threads),
                log=log,
                pass_fds=(write_fd,),
            )
            os.close(write_fd)
            write_fd = -1
            watch = _Watch(
                spec=spec,
                eval_timeout_s=eval_timeout_s
                if eval_timeout_s is not None
                else max(60.0, spec.time_budget_s),
                on_progress=on_progress,
                should_abort=should_abort,
            )
            try:
                watch.follow(child, read_fd)
                killed_because = None
            except _Killed as killed:
                killed_because = str(killed)
            finally:
                _kill_group(child)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    return _collect(
        returncode=child.returncode,
        killed_because=killed_because,
        result_path=result_path,
        log_tail=_tail(log_path),
        wall_seconds=time.monotonic() - started,
    )


def spawn(
    command: list[str], *, workdir: Path, env: dict[str, str], log: IO[bytes], pass_fds: tuple[int, ...]
) -> subprocess.Popen[bytes]:
    """Start the harness. The one place to wrap it in a sandbox (namespaces, rlimits)."""
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
    ) -> None:
        self._spec = spec
        self._eval_timeout_s = eval_timeout_s
        self._on_progress = on_progress
        self._should_abort = should_abort
        self._buffer = b""
        self._phase = "starting"
        self._train_started_at: float | None = None
        self._deadline = time.monotonic() + STARTUP_TIMEOUT_S
        self._overrun = f"did not start training within {STARTUP_TIMEOUT_S:.0f}s"

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
                raise _Killed("aborted")
            if time.monotonic() > self._deadline:
                raise _Killed(self._overrun)

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
            self._overrun = f"exceeded time budget ({spec.time_budget_s:g}s + {spec.grace_s:g}s grace)"
        elif name == "train_finished" and self._phase == "training":
            self._phase = "evaluating"
            self._deadline = now + self._eval_timeout_s
            self._overrun = f"evaluation took longer than {self._eval_timeout_s:g}s"
        elif name == "eval_finished" and self._phase == "evaluating":
            self._phase = "reporting"
            self._deadline = now + EXIT_GRACE_S
            self._overrun = f"did not exit within {EXIT_GRACE_S:g}s of finishing evaluation"
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
    """Kill the child's process group, also after a clean exit (the variant may have left
    processes behind), and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _collect(
    *, returncode: int, killed_because: str | None, result_path: Path, log_tail: str, wall_seconds: float
) -> HarnessResult:
    def crashed(reason: str) -> HarnessResult:
        return HarnessResult(
            status=CRASHED, reason=reason, metrics={}, env={}, log_tail=log_tail, wall_seconds=wall_seconds
        )

    if killed_because is not None:
        return crashed(killed_because)
    if returncode < 0:
        return crashed(f"harness was killed by signal {_signal_name(-returncode)}")
    if returncode != 0 or not result_path.exists():
        last_line = next((line for line in reversed(log_tail.splitlines()) if line.strip()), "")
        detail = f": {last_line.strip()}" if last_line else ""
        return crashed(f"harness exited with code {returncode} and wrote no result{detail}")
    try:
        data = json.loads(result_path.read_text(encoding="utf-8"))
        return HarnessResult(
            status=str(data["status"]),
            reason=data.get("reason"),
            metrics=dict(data.get("metrics") or {}),
            env=dict(data.get("env") or {}),
            log_tail=log_tail,
            wall_seconds=wall_seconds,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return crashed(f"harness wrote an unreadable result: {exc}")


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
