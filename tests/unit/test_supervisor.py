"""The supervisor against real runs: deadlines, aborts, deaths, what the run's processes see, and
the bounds on what the variant's process reports.

The runs here go without the sandbox and the run-time guard (SandboxConfig.off()) and past the
static policy: what is under test is the supervisor's own part (its session and process tree,
its clocks and its parsing), which must hold with no other layer behind it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.track_spec import TrackSpec
from tests.processes import process_is_gone
from tests.trackfactory import UNIFORM_MODEL, UNIFORM_MODULE, build_track
from worker.execution import Executor, Outcome, Progress, RunRequest
from worker.execution.sandbox import PROJECT_ROOT, Sandbox, SandboxConfig
from worker.execution.supervisor import LOG_TAIL_BYTES, MAX_STEP, _Ended, _Feeder, _no_result, _Watch


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=1.0, grace_s=1.0)


@pytest.fixture(scope="module")
def bare() -> Sandbox:
    return Sandbox.detect(SandboxConfig.off(), device="cpu")


def run(
    tmp_path: Path,
    track: tuple[TrackSpec, Path],
    source: str,
    *,
    sandbox: Sandbox,
    spec: TrackSpec | None = None,
    data_dir: Path | None = None,
    threads: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
) -> Outcome:
    track_spec, track_data = track
    executor = Executor(sandbox=sandbox, device="cpu", threads=threads)
    request = RunRequest(
        source=textwrap.dedent(source),
        spec=spec or track_spec,
        data_dir=data_dir or track_data,
        seed=1,
        workdir=tmp_path / "work",
    )
    return executor.run(request, on_progress=on_progress, should_abort=should_abort, enforce_policy=False)


def decided(outcome: Outcome) -> tuple[str, str | None, str | None, str | None]:
    return outcome.status, outcome.layer, outcome.code, outcome.reason


# --- deadlines, aborts and deaths --------------------------------------------------------------


def test_variant_overrunning_its_budget_is_killed_with_everything_it_started(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox
) -> None:
    source = """
    import subprocess
    import time


    def train(ctx):
        helper = subprocess.Popen(["sleep", "600"], start_new_session=True)
        with open("helper.pid", "w") as handle:
            handle.write(str(helper.pid))
        time.sleep(600)
    """
    outcome = run(tmp_path, track, source, sandbox=bare)

    assert decided(outcome) == ("crashed", "budget", "budget_exceeded", "exceeded time budget (1s + 1s grace)")
    assert outcome.metrics == {"steps": None, "tokens": None}
    assert set(outcome.env) == {"startup_s"}  # the supervisor's measurement; the scorer wrote nothing
    assert process_is_gone(int((tmp_path / "work" / "helper.pid").read_text()))


def test_a_daemon_the_variant_leaves_behind_after_a_clean_run_is_killed(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox
) -> None:
    # The classic double fork: a child in a session of its own starts the daemon and exits, so the
    # daemon is an orphan in neither the run's process group nor (but for the scorer) its tree.
    source = UNIFORM_MODULE + """

import os
import subprocess


def train(ctx):
    launcher = subprocess.Popen(
        ["sh", "-c", "sleep 600 & echo $! > daemon.pid"], start_new_session=True
    )
    launcher.wait()
    return Uniform(ctx.vocab_size)
"""
    outcome = run(tmp_path, track, source, sandbox=bare)

    assert outcome.status == "ok"
    daemon = int((tmp_path / "work" / "daemon.pid").read_text())
    assert process_is_gone(daemon)


def test_should_abort_kills_the_run(tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox) -> None:
    seen: list[Progress] = []
    source = """
    import time


    def train(ctx):
        time.sleep(600)
    """
    outcome = run(tmp_path, track, source, sandbox=bare, on_progress=seen.append, should_abort=lambda: bool(seen))

    assert decided(outcome) == ("crashed", None, "aborted", "aborted")
    assert [p.phase for p in seen] == ["training"]


def test_a_run_killed_by_a_signal_is_named(tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox) -> None:
    # The variant's parent is the scorer: the process the supervisor started and waits for.
    source = """
    import os
    import signal
    import time


    def train(ctx):
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(600)
    """
    outcome = run(tmp_path, track, source, sandbox=bare)

    assert decided(outcome) == ("crashed", "harness", "killed_by_signal", "the run was killed by signal SIGKILL")


@pytest.mark.parametrize(
    ("ending", "code", "reason"),
    [
        ("os._exit(3)", "no_result", "the variant's process exited with code 3 before evaluation"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "killed_by_signal", "the variant's process was killed by signal SIGKILL"),
    ],
    ids=["exit", "killed"],
)
def test_a_variant_process_that_vanishes_while_training_is_named_by_its_exit(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox, ending: str, code: str, reason: str
) -> None:
    source = f"""
    import os
    import signal


    def train(ctx):
        {ending}
    """
    outcome = run(tmp_path, track, source, sandbox=bare)

    assert decided(outcome) == ("crashed", "harness", code, reason)
    assert "val_bpb" not in outcome.metrics


def test_the_scorer_exiting_without_a_result_is_crashed_without_quoting_the_log() -> None:
    # The variant writes to the same log, and a reason leaves the machine.
    run = _no_result(3, log_tail="some output\nmy secret line\n\n", wall=1.0, variant_ran=True)

    assert (run.status, run.code, run.reason) == (
        "crashed",
        "no_result",
        "the run ended with code 3 and no result (the run's log, on the worker, says why)",
    )


@pytest.mark.parametrize(
    ("returncode", "reason"),
    [(-9, "the run was killed by signal SIGKILL"), (128 + 15, "the run was killed by signal SIGTERM")],
    ids=["direct", "relayed-by-bubblewrap"],
)
def test_an_exit_by_signal_is_named_whether_direct_or_relayed(returncode: int, reason: str) -> None:
    run = _no_result(returncode, log_tail="", wall=1.0, variant_ran=True)

    assert (run.code, run.reason) == ("killed_by_signal", reason)


def test_the_sandbox_failing_to_start_is_named_by_its_own_last_line_but_only_before_the_variant_ran() -> None:
    log_tail = "bwrap: Can't mount proc on /newroot/proc\n"

    before = _no_result(1, log_tail=log_tail, wall=0.1, variant_ran=False)
    after = _no_result(1, log_tail=log_tail, wall=0.1, variant_ran=True)  # the variant printed it

    assert (before.code, before.reason) == (
        "sandbox_failed",
        "the sandbox could not start the run: bwrap: Can't mount proc on /newroot/proc",
    )
    assert after.code == "no_result"


def test_missing_train_data_is_a_setup_failure_that_carries_its_message(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox
) -> None:
    spec, data_dir = track
    partial = tmp_path / "partial"  # the byte table, no train shards
    partial.mkdir()
    (partial / spec.assets.token_bytes).write_bytes((data_dir / spec.assets.token_bytes).read_bytes())

    outcome = run(tmp_path, track, "def train(ctx):\n    pass\n", sandbox=bare, data_dir=partial)

    assert (outcome.status, outcome.layer, outcome.code) == ("crashed", "harness", "harness_setup_failed")
    assert outcome.reason is not None
    assert outcome.reason.startswith("the run could not start: cannot read the track's train shards: ")


def test_evaluation_overrunning_its_timeout_is_killed(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox
) -> None:
    spec, _ = track
    # The scorer would wait 30 s for the first forward; the whole evaluation has 1 s.
    slow_spec = dataclasses.replace(spec, extra={"eval_timeout_s": 1.0, "eval_warmup_s": 30.0})
    source = (
        UNIFORM_MODULE
        + """
import time


class Slow(Uniform):
    def forward(self, idx):
        time.sleep(600)


def train(ctx):
    return Slow(ctx.vocab_size)
"""
    )
    seen: list[Progress] = []
    outcome = run(tmp_path, track, source, sandbox=bare, spec=slow_spec, on_progress=seen.append)

    assert decided(outcome) == ("crashed", "budget", "eval_timeout", "evaluation took longer than 1s")
    assert [p.phase for p in seen] == ["training", "evaluating"]


def test_a_forward_far_slower_than_allowed_is_refused_by_the_scorer_before_the_evaluation_timeout(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox
) -> None:
    spec, _ = track
    slow_spec = dataclasses.replace(spec, extra={"eval_timeout_s": 60.0, "eval_warmup_s": 0.5})
    source = (
        UNIFORM_MODULE
        + """
import time


class Slow(Uniform):
    def forward(self, idx):
        time.sleep(600)


def train(ctx):
    return Slow(ctx.vocab_size)
"""
    )
    outcome = run(tmp_path, track, source, sandbox=bare, spec=slow_spec)

    assert decided(outcome) == (
        "crashed",
        "budget",
        "slow_forward",
        "an evaluation forward was still running after 0.50s, past what this evaluation allows"
        " (worker/SANDBOX.md, honest time): evaluation is not training time",
    )
    assert outcome.wall_seconds < 30


# --- what the run's processes see --------------------------------------------------------------


def test_the_run_gets_a_scrubbed_environment_and_the_workdir_as_home(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARN_TEST_SECRET", "do-not-leak")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    source = (
        UNIFORM_MODULE
        + """
import json
import os


def train(ctx):
    with open("env.json", "w") as handle:
        json.dump({"env": dict(os.environ), "cwd": os.getcwd()}, handle)
    return Uniform(ctx.vocab_size)
"""
    )
    outcome = run(tmp_path, track, source, sandbox=bare, threads=1)

    assert outcome.status == "ok", outcome.log_tail
    seen = json.loads((tmp_path / "work" / "env.json").read_text())
    workdir = str((tmp_path / "work").resolve())
    assert seen["cwd"] == workdir
    assert "ARN_TEST_SECRET" not in seen["env"] and "HTTPS_PROXY" not in seen["env"]
    assert (seen["env"]["HOME"], seen["env"]["TMPDIR"]) == (workdir, workdir)
    assert seen["env"]["PYTHONPATH"] == str(PROJECT_ROOT)
    assert (seen["env"]["OMP_NUM_THREADS"], seen["env"]["MKL_NUM_THREADS"]) == ("1", "1")
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert outcome.env["threads"] == 1


def test_log_tail_keeps_the_last_few_kilobytes_of_output(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox
) -> None:
    source = """
    def train(ctx):
        for line in range(20_000):
            print(f"line {line}")
        raise RuntimeError("the end")
    """
    outcome = run(tmp_path, track, source, sandbox=bare)

    assert outcome.reason == "train() raised RuntimeError at train.py:5 in train: the end"
    assert len(outcome.log_tail.encode()) <= LOG_TAIL_BYTES
    assert "RuntimeError: the end" in outcome.log_tail
    assert "line 100\n" not in outcome.log_tail
    assert (tmp_path / "work" / "harness.log").read_text().startswith("line 0\n")


def test_a_run_leaves_no_descriptor_open_in_the_worker(
    tmp_path: Path, track: tuple[TrackSpec, Path], bare: Sandbox
) -> None:
    before = sorted(os.listdir("/proc/self/fd"))

    outcome = run(tmp_path, track, UNIFORM_MODEL, sandbox=bare)

    assert outcome.status == "ok"
    assert sorted(os.listdir("/proc/self/fd")) == before


# --- the variant's events are claims, parsed with bounds ---------------------------------------


@pytest.fixture
def watch(track: tuple[TrackSpec, Path]) -> Iterator[tuple[_Watch, _Feeder, list[Progress]]]:
    """A watch loop's event handling, with a real feeder on a pipe nobody reads."""
    spec, data_dir = track
    seen: list[Progress] = []
    read_end, write_end = os.pipe()
    feeder = _Feeder(write_end, val_path=data_dir / spec.assets.val, holdout=None)
    try:
        yield _Watch(spec=spec, on_progress=seen.append, should_abort=None), feeder, seen
    finally:
        feeder.close()
        os.close(read_end)


def event(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def ended(watch: _Watch, feeder: _Feeder, line: bytes) -> tuple[str, str, str]:
    with pytest.raises(_Ended) as caught:
        watch._handle(line, feeder)
    return caught.value.status, caught.value.code, caught.value.reason


def test_progress_within_bounds_is_passed_on_in_order(watch: tuple[_Watch, _Feeder, list[Progress]]) -> None:
    loop, feeder, seen = watch

    for line in [
        event(event="progress", step=1, loss=9.0),  # before training started: ignored
        event(event="train_started", time_budget_s=1.0),
        event(event="progress", step=1, loss=5.5),
        event(event="progress", step=MAX_STEP, loss=None),
        event(event="mystery", step=-1),  # unknown: ignored
        event(event="train_finished", steps=7, tokens=7 * 64),
        event(event="progress", step=8, loss=1.0),  # after training: ignored
    ]:
        loop._handle(line, feeder)

    assert [(p.phase, p.step, p.loss) for p in seen] == [
        ("training", None, None),
        ("training", 1, 5.5),
        ("training", MAX_STEP, None),
        ("evaluating", 7, None),
    ]
    assert loop.measured()["steps"] == 7 and loop.measured()["tokens"] == 7 * 64


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"event": "progress", "step": 2**64, "loss": 1.0},
            "the variant reported step out of range (a whole number from 0 to 9007199254740991)",
        ),
        (
            {"event": "progress", "step": -1, "loss": 1.0},
            "the variant reported step out of range (a whole number from 0 to 9007199254740991)",
        ),
        (
            {"event": "progress", "step": True, "loss": 1.0},
            "the variant reported step out of range (a whole number from 0 to 9007199254740991)",
        ),
        (
            {"event": "progress", "step": 1.5, "loss": 1.0},
            "the variant reported step out of range (a whole number from 0 to 9007199254740991)",
        ),
        ({"event": "progress", "step": 1, "loss": 1e10}, "the variant reported a loss that is not a number of sane size"),
        ({"event": "progress", "step": 1, "loss": "low"}, "the variant reported a loss that is not a number of sane size"),
        (
            {"event": "train_finished", "steps": 10**30, "tokens": 1},
            "the variant reported steps out of range (a whole number from 0 to 9007199254740991)",
        ),
        (
            {"event": "train_finished", "steps": 1, "tokens": -5},
            "the variant reported tokens out of range (a whole number from 0 to 9007199254740991)",
        ),
    ],
    ids=["huge-step", "negative-step", "bool-step", "fractional-step", "huge-loss", "text-loss",
         "huge-steps", "negative-tokens"],
)  # fmt: skip
def test_a_reported_field_out_of_range_ends_the_run_without_repeating_it(
    watch: tuple[_Watch, _Feeder, list[Progress]], fields: dict[str, Any], reason: str
) -> None:
    loop, feeder, _ = watch
    loop._handle(event(event="train_started", time_budget_s=1.0), feeder)

    assert ended(loop, feeder, event(**fields)) == ("rejected", "report_out_of_range", reason)


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'{"no_event": 1}', b""], ids=str)
def test_a_malformed_event_ends_the_run(watch: tuple[_Watch, _Feeder, list[Progress]], line: bytes) -> None:
    loop, feeder, _ = watch

    assert ended(loop, feeder, line) == (
        "rejected",
        "report_out_of_range",
        "the variant's process wrote a malformed event",
    )


def test_a_guard_event_ends_the_run_with_its_code_or_guard_process_when_the_code_is_unknown(
    watch: tuple[_Watch, _Feeder, list[Progress]],
) -> None:
    loop, feeder, _ = watch

    assert ended(loop, feeder, event(event="guard", code="guard_file", reason="the run-time guard refused x")) == (
        "rejected",
        "guard_file",
        "the run-time guard refused x",
    )
    assert ended(loop, feeder, event(event="guard", code="made_up", reason=7)) == (
        "rejected",
        "guard_process",
        "no reason given",
    )


def test_the_host_failing_in_training_is_kept_as_its_own_account_of_the_run(
    watch: tuple[_Watch, _Feeder, list[Progress]],
) -> None:
    loop, feeder, _ = watch
    loop._handle(event(event="train_started", time_budget_s=1.0), feeder)

    loop._handle(
        event(event="failed", status="ok", code="made_up", reason="train() raised X", steps=3, tokens=96), feeder
    )

    assert loop.host_failure is not None
    # A failure is never "ok", and an unknown code is the generic crash.
    assert (loop.host_failure.status, loop.host_failure.code, loop.host_failure.reason) == (
        "crashed",
        "variant_crashed",
        "train() raised X",
    )
    assert (loop.steps, loop.tokens) == (3, 96)
