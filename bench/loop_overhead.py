"""Where one worker's time goes: the wall time of an explore cycle and the overhead around training.

Starts a real `coordinator serve` (embedded SQLite in a temporary folder, the built-in cpu-tiny
track at its default budget unless `--budget` says otherwise, one calibration run) and runs one
worker daemon in this process, built exactly as `worker join --agent offline` builds it (sandbox
and guard included), with two seams that only read the clock: a display that notes when each
lease starts and when its result is accepted, and a wrapper around the executor that notes when a
run is handed to it, when the run reports each phase, and when it returns. Per lease it prints:

- lease → spawn: the agent's proposal (explore only), the data check;
- spawn → train: the policy, the sandbox's and the run's start-up (interpreters, torch imports,
  data), up to the variant's import;
- train: the training itself, the budget the track grants;
- eval: scoring the val shard (and held-out windows) with the integrity probes, as the supervisor
  measured it;
- eval end → accepted: the run's processes exiting, signing, the outbox and the coordinator's answer;
- cycle: lease start to result accepted;
- overhead: cycle minus train, i.e. everything a volunteer's machine spends outside training.

    python bench/loop_overhead.py                       # 1 calibration + 2 explores, about 4 minutes
    python bench/loop_overhead.py --budget 10 --experiments 4 --json

The first lease also downloads and hash-checks the track's files (a few MB from the local
coordinator); later leases find them cached.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from shared.protocol import Lease  # noqa: E402
from worker.agents.base import make_agent  # noqa: E402
from worker.client import CoordinatorClient  # noqa: E402
from worker.daemon import Daemon, DaemonOptions  # noqa: E402
from worker.display import PlainDisplay, ResultRow  # noqa: E402
from worker.execution import Executor, Outcome, Progress, RunRequest  # noqa: E402
from worker.hardware import probe  # noqa: E402
from worker.identity import WorkerHome  # noqa: E402

BIN = Path(sys.executable).parent
PHASES = ("lease_started", "spawned", "training", "evaluating", "reporting", "exited", "accepted")


@dataclass
class Timeline:
    """Monotonic timestamps of one lease's phases (seconds), in the order of PHASES."""

    kind: str
    marks: dict[str, float] = field(default_factory=dict)

    def span(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return self.marks[end] - self.marks[start]
        return None

    def figures(self) -> dict[str, float | None]:
        cycle = self.span("lease_started", "accepted")
        train = self.span("training", "evaluating")
        return {
            "lease_to_spawn_s": self.span("lease_started", "spawned"),
            "spawn_to_train_s": self.span("spawned", "training"),
            "train_s": train,
            "eval_s": self.span("evaluating", "reporting"),
            "eval_end_to_accepted_s": self.span("reporting", "accepted"),
            "cycle_s": cycle,
            "overhead_s": None if cycle is None or train is None else cycle - train,
        }


class Stopwatch:
    """The clock seams: a display and an executor wrapper that record when each phase begins."""

    def __init__(self) -> None:
        self.timelines: list[Timeline] = []
        self._display = PlainDisplay(stream=sys.stderr)

    def _mark(self, phase: str) -> None:
        if self.timelines and phase not in self.timelines[-1].marks:
            self.timelines[-1].marks[phase] = time.monotonic()

    # Display: lease_started and run_finished are the cycle's ends; the rest passes through.
    def lease_started(self, lease: Lease) -> None:
        self.timelines.append(Timeline(kind=lease.kind))
        self._mark("lease_started")
        self._display.lease_started(lease)

    def run_finished(self, row: ResultRow) -> None:
        self._mark("accepted")
        self._display.run_finished(row)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._display, name)

    def timed(self, executor: Executor) -> TimedExecutor:
        return TimedExecutor(self, executor)


class TimedExecutor:
    """The executor, with its run's phases marked on the stopwatch's current timeline."""

    def __init__(self, stopwatch: Stopwatch, executor: Executor) -> None:
        self._stopwatch = stopwatch
        self._executor = executor

    def run(
        self,
        request: RunRequest,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> Outcome:
        mark = self._stopwatch._mark
        mark("spawned")

        def progress(event: Progress) -> None:
            mark(event.phase)
            if on_progress is not None:
                on_progress(event)

        outcome = self._executor.run(request, on_progress=progress, should_abort=should_abort)
        timeline = self._stopwatch.timelines[-1]
        eval_seconds = outcome.metrics.get("eval_seconds")
        if "evaluating" in timeline.marks and isinstance(eval_seconds, int | float):
            # The supervisor's own measure: from train() returning to the scorer's result.
            timeline.marks.setdefault("reporting", timeline.marks["evaluating"] + eval_seconds)
        mark("reporting")  # a run that ended before its result: evaluation ends with it
        mark("exited")
        return outcome


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_coordinator(root: Path, port: int, budget_s: float | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ARN_DATA_DIR": str(root / "coordinator"), "ARN_CPU_TINY_CALIBRATION_RUNS": "1"}
    if budget_s is not None:
        env["ARN_CPU_TINY_BUDGET_S"] = str(budget_s)
    log = (root / "coordinator.log").open("wb")
    argv = [str(BIN / "coordinator"), "serve", "--port", str(port)]
    child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"coordinator exited:\n{(root / 'coordinator.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/info", timeout=2).status_code == 200:
                return child
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the coordinator did not answer within 180s")


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def measure(*, experiments: int, budget_s: float | None, threads: int | None, seed: int) -> list[Timeline]:
    with tempfile.TemporaryDirectory(prefix="loop-overhead-") as tmp:
        root = Path(tmp)
        port = _free_port()
        coordinator = _start_coordinator(root, port, budget_s)
        try:
            url = f"http://127.0.0.1:{port}"
            stopwatch = Stopwatch()
            executor = Executor.detect(device="cpu", threads=threads)
            options = DaemonOptions(
                coordinator_url=url,
                hardware=probe("cpu"),
                name="bench-cpu",
                account="bench",
                track_id="cpu-tiny",
                max_experiments=experiments,
                agent_seed=seed,
            )
            with CoordinatorClient(url) as client:
                Daemon(
                    client=client,
                    home=WorkerHome(root / "worker"),
                    agent=make_agent("offline"),
                    executor=stopwatch.timed(executor),
                    display=stopwatch,  # a Display by duck typing (its other methods pass through)
                    options=options,
                ).run()
            return stopwatch.timelines
        finally:
            _stop(coordinator)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=3, help="leases to run, calibration included")
    parser.add_argument("--budget", type=float, default=None, help="training seconds (default: the track's, 60)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training")
    parser.add_argument("--seed", type=int, default=1, help="the offline agent's seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    timelines = measure(experiments=args.experiments, budget_s=args.budget, threads=args.threads, seed=args.seed)
    if args.json:
        rows = [{"kind": t.kind, **t.figures()} for t in timelines]
        print(json.dumps({"leases": rows, "marks": [asdict(t) for t in timelines]}, indent=2))
        return
    columns = list(Timeline(kind="").figures())
    widths = [max(len(c), 8) + 2 for c in columns]  # the longest name must not run into the next
    print(f"{'kind':>10}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for timeline in timelines:
        figures = timeline.figures()
        cells = (f"{_fmt(figures[c]):>{w}}" for c, w in zip(columns, widths, strict=True))
        print(f"{timeline.kind:>10}" + "".join(cells))


if __name__ == "__main__":
    main()
