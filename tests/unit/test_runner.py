"""The runner against real harness subprocesses: deadlines, aborts, deaths, and what the child sees."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.track_spec import TrackSpec
from tests.trackfactory import UNIFORM_MODEL, UNIFORM_MODULE, build_track
from worker.runner import LOG_TAIL_BYTES, HarnessResult, Progress, run_harness


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=1.0, grace_s=1.0)


def run(
    tmp_path: Path,
    track: tuple[TrackSpec, Path],
    source: str,
    *,
    data_dir: Path | None = None,
    threads: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
    eval_timeout_s: float | None = None,
) -> HarnessResult:
    spec, track_data = track
    train_py = tmp_path / "train.py"
    train_py.write_text(textwrap.dedent(source))
    return run_harness(
        train_py=train_py,
        spec=spec,
        data_dir=data_dir or track_data,
        seed=1,
        workdir=tmp_path / "work",
        device="cpu",
        threads=threads,
        on_progress=on_progress,
        should_abort=should_abort,
        eval_timeout_s=eval_timeout_s,
    )


def process_is_gone(pid: int) -> bool:
    """Gone, or a zombie left for init to reap: either way it no longer runs."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_variant_overrunning_its_budget_is_killed_with_everything_it_started(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    import subprocess
    import time


    def train(ctx):
        helper = subprocess.Popen(["sleep", "600"])
        with open("helper.pid", "w") as handle:
            handle.write(str(helper.pid))
        time.sleep(600)
    """
    result = run(tmp_path, track, source)

    assert (result.status, result.reason) == ("crashed", "exceeded time budget (1s + 1s grace)")
    assert (result.metrics, result.env) == ({}, {})
    assert process_is_gone(int((tmp_path / "work" / "helper.pid").read_text()))


def test_should_abort_kills_the_run(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    seen: list[Progress] = []
    source = """
    import time


    def train(ctx):
        time.sleep(600)
    """
    result = run(tmp_path, track, source, on_progress=seen.append, should_abort=lambda: bool(seen))

    assert (result.status, result.reason) == ("crashed", "aborted")
    assert [p.phase for p in seen] == ["training"]


def test_harness_killed_by_a_signal_is_named(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    source = """
    import os
    import signal


    def train(ctx):
        os.kill(os.getpid(), signal.SIGKILL)
    """
    result = run(tmp_path, track, source)

    assert (result.status, result.reason) == ("crashed", "harness was killed by signal SIGKILL")


def test_harness_exiting_without_a_result_is_crashed_and_a_stale_result_is_ignored(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    (tmp_path / "work").mkdir()
    stale = {"status": "ok", "reason": None, "metrics": {"val_bpb": 0.1}, "env": {}}
    (tmp_path / "work" / "result.json").write_text(json.dumps(stale))
    source = """
    import os


    def train(ctx):
        os._exit(3)
    """
    result = run(tmp_path, track, source)

    assert (result.status, result.reason) == ("crashed", "harness exited with code 3 and wrote no result")


def test_harness_setup_failure_reason_carries_its_message(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    (tmp_path / "empty").mkdir()

    result = run(tmp_path, track, "def train(ctx):\n    pass\n", data_dir=tmp_path / "empty")

    assert result.status == "crashed"
    assert result.reason is not None
    assert result.reason.startswith(
        "harness exited with code 2 and wrote no result: harness: error: cannot read the track's data: "
    )


def test_evaluation_overrunning_its_timeout_is_killed(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
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
    result = run(tmp_path, track, source, eval_timeout_s=1.0, on_progress=seen.append)

    assert (result.status, result.reason) == ("crashed", "evaluation took longer than 1s")
    assert [p.phase for p in seen] == ["training", "evaluating"]


def test_child_gets_a_scrubbed_environment_and_the_workdir_as_home(
    tmp_path: Path, track: tuple[TrackSpec, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARN_TEST_SECRET", "do-not-leak")
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
    result = run(tmp_path, track, source, threads=1)

    assert result.status == "ok"
    seen = json.loads((tmp_path / "work" / "env.json").read_text())
    workdir = str((tmp_path / "work").resolve())
    assert seen["cwd"] == workdir
    assert "ARN_TEST_SECRET" not in seen["env"]
    assert seen["env"]["HOME"] == workdir
    assert (seen["env"]["OMP_NUM_THREADS"], seen["env"]["MKL_NUM_THREADS"]) == ("1", "1")
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert result.env["threads"] == 1


def test_log_tail_keeps_the_last_few_kilobytes_of_output(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    def train(ctx):
        for line in range(20_000):
            print(f"line {line}")
        raise RuntimeError("the end")
    """
    result = run(tmp_path, track, source)

    assert result.reason == "train() raised RuntimeError: the end"
    assert len(result.log_tail.encode()) <= LOG_TAIL_BYTES
    assert "line 19999" in result.log_tail
    assert "line 100\n" not in result.log_tail
    assert (tmp_path / "work" / "harness.log").read_text().startswith("line 0\n")


def test_runner_leaves_no_progress_pipe_open(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    before = set(os.listdir("/proc/self/fd"))

    result = run(tmp_path, track, UNIFORM_MODEL)

    assert result.status == "ok"
    assert set(os.listdir("/proc/self/fd")) <= before
