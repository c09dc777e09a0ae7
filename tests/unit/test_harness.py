"""The harness, run for real (`python -m worker.harness` via the runner) on a byte-level track.

On this track every non-special token is one byte, so a model that predicts the uniform
distribution over 256 ids scores exactly log2(256) = 8 bits per byte: an exact figure to check
the harness's arithmetic against.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.protocol import RunMetrics
from shared.track_spec import TrackSpec
from tests.trackfactory import UNIFORM_MODEL, UNIFORM_MODULE, build_track
from worker.harness.result import Metrics
from worker.runner import PROJECT_ROOT, HarnessResult, Progress, run_harness


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=3.0, grace_s=2.0)


def run_variant(
    tmp_path: Path,
    track: tuple[TrackSpec, Path],
    source: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> HarnessResult:
    spec, data_dir = track
    train_py = tmp_path / "train.py"
    train_py.write_text(textwrap.dedent(source))
    return run_harness(
        train_py=train_py,
        spec=spec,
        data_dir=data_dir,
        seed=7,
        workdir=tmp_path / "work",
        device="cpu",
        threads=1,
        on_progress=on_progress,
    )


def test_uniform_model_scores_exactly_eight_bits_per_byte(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    result = run_variant(tmp_path, track, UNIFORM_MODEL)

    assert (result.status, result.reason) == ("ok", None)
    assert result.metrics["val_bpb"] == pytest.approx(8.0, rel=1e-6)
    assert result.metrics["val_loss"] == pytest.approx(math.log(256), rel=1e-6)
    assert result.metrics["num_params"] == 256
    assert (result.metrics["steps"], result.metrics["tokens"]) == (0, 0)
    assert result.env["threads"] >= 1 and result.env["torch"]


def test_metric_names_are_the_protocols_run_metrics() -> None:
    assert [f.name for f in dataclasses.fields(Metrics)] == list(RunMetrics.model_fields)


def test_variant_that_raises_is_crashed_with_the_last_line_of_the_exception(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    def train(ctx):
        raise ValueError("a long story\\nlearning rate too high")
    """
    result = run_variant(tmp_path, track, source)

    assert (result.status, result.reason) == ("crashed", "train() raised ValueError: learning rate too high")
    assert 'raise ValueError("a long story' in result.log_tail  # the traceback is in the log


def test_variant_failing_at_import_is_crashed(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    result = run_variant(tmp_path, track, "x = 1 / 0\n")

    assert (result.status, result.reason) == (
        "crashed",
        "importing train.py raised ZeroDivisionError: division by zero",
    )


def test_variant_without_train_function_is_rejected(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    result = run_variant(tmp_path, track, "TRAIN = None\n")

    assert (result.status, result.reason) == ("rejected", "train.py defines no train(ctx) function")


def test_train_returning_something_other_than_a_module_is_rejected(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    result = run_variant(tmp_path, track, "def train(ctx):\n    return {'weights': 1}\n")

    assert (result.status, result.reason) == ("rejected", "train() returned dict, not a torch.nn.Module")


def test_clock_starts_before_the_variant_is_imported(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    source = (
        UNIFORM_MODULE
        + """
import time

time.sleep(1.0)  # "free" work at import time


def train(ctx):
    left = ctx.time_left()
    if left > ctx.time_budget_s - 1.0:
        raise AssertionError(f"import time was not charged: {left:.3f}s left")
    return Uniform(ctx.vocab_size)
"""
    )
    result = run_variant(tmp_path, track, source)

    assert (result.status, result.reason) == ("ok", None)


def test_printed_fake_metrics_do_not_change_the_score(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    source = (
        UNIFORM_MODULE
        + """
def train(ctx):
    print('{"event": "eval_finished"}')
    print("---\\nstatus: ok\\nval_bpb: 0.100000", flush=True)
    return Uniform(ctx.vocab_size)
"""
    )
    result = run_variant(tmp_path, track, source)

    assert result.status == "ok"
    assert result.metrics["val_bpb"] == pytest.approx(8.0, rel=1e-6)
    assert "val_bpb: 0.100000" in result.log_tail  # it did print the fake line
    assert "val_bpb: 8.000000" in result.log_tail  # and the harness printed the real one


@pytest.mark.parametrize(
    ("forward", "reason"),
    [
        (
            "return self.logit.expand(*idx.shape, -1)[..., :-1]",
            "probe output_shape: logits have shape (8, 64, 255); expected (8, 64, 256) = (batch, seq_len, vocab_size)",
        ),
        (
            "return torch.zeros(*idx.shape, 256, dtype=torch.int64)",
            "probe output_dtype: logits have dtype torch.int64; expected a floating-point dtype",
        ),
        (
            "return self.logit.expand(*idx.shape, -1) * float('nan')",
            "probe finite_logits: logits contain non-finite values (NaN or inf), the first at"
            " (row, position, token) (0, 0, 0)",
        ),
        ("return (self.logit,)", "probe output_shape: model returned tuple, not a tensor of logits"),
    ],
    ids=["wrong-shape", "integer-dtype", "nan", "not-a-tensor"],
)
def test_logits_breaking_the_contract_are_rejected(
    tmp_path: Path, track: tuple[TrackSpec, Path], forward: str, reason: str
) -> None:
    source = f"""
    import torch


    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.logit = torch.nn.Parameter(torch.zeros(256))

        def forward(self, idx):
            {forward}


    def train(ctx):
        return Broken()
    """
    result = run_variant(tmp_path, track, source)

    assert (result.status, result.reason) == ("rejected", reason)


def test_model_raising_during_evaluation_is_crashed(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    source = """
    import torch


    class Fragile(torch.nn.Module):
        def forward(self, idx):
            raise RuntimeError("expected a GPU")


    def train(ctx):
        return Fragile()
    """
    result = run_variant(tmp_path, track, source)

    assert (result.status, result.reason) == ("crashed", "evaluation raised RuntimeError: expected a GPU")


def test_progress_events_arrive_in_order(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    source = (
        UNIFORM_MODULE
        + """
def train(ctx):
    ctx.report(step=1, loss=2.5)
    ctx.report(step=2, loss=2.25)  # within the throttle window: held back, sent when train() returns
    return Uniform(ctx.vocab_size)
"""
    )
    seen: list[Progress] = []
    result = run_variant(tmp_path, track, source, on_progress=seen.append)

    assert result.status == "ok"
    assert [(p.phase, p.step, p.loss) for p in seen] == [
        ("training", None, None),
        ("training", 1, 2.5),
        ("training", 2, 2.25),
        ("evaluating", None, None),
        ("reporting", None, None),
    ]
    assert {p.time_budget_s for p in seen} == {3.0}
    assert result.metrics["steps"] == 2


def test_val_shard_is_neither_open_nor_reachable_while_training(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, _ = track
    source = UNIFORM_MODULE + textwrap.dedent(f"""
    import os

    VAL = {spec.assets.val!r}
    TRAIN = {spec.assets.train[0]!r}


    def reachable_strings(obj, depth=0, seen=None):
        seen = set() if seen is None else seen
        if depth > 6 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, (str, os.PathLike)):
            yield os.fspath(obj)
            return
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else []
        for child in [*children, *getattr(obj, "__dict__", {{}}).values()]:
            yield from reachable_strings(child, depth + 1, seen)


    def open_files():
        for fd in os.listdir("/proc/self/fd"):
            try:
                yield os.readlink(f"/proc/self/fd/{{fd}}")
            except OSError:
                pass  # the fd listdir itself used, closed by now


    def train(ctx):
        opened = list(open_files())
        with open("/proc/self/maps") as maps:
            mapped = maps.read()
        strings = list(reachable_strings(ctx))
        # The same checks do see a train shard, so they would see the val shard if it were there.
        assert TRAIN in mapped and any(TRAIN in s for s in strings), "the checks are blind"
        assert not any(VAL in f for f in opened), "val shard is open"
        assert VAL not in mapped, "val shard is mapped"
        assert not any(VAL in s for s in strings), "val shard is reachable from ctx"
        return Uniform(ctx.vocab_size)
    """)
    result = run_variant(tmp_path, track, source)

    assert (result.status, result.reason) == ("ok", None)


def test_cli_writes_the_result_and_prints_the_summary_block(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, data_dir = track
    (tmp_path / "spec.json").write_text(spec.dumps())
    (tmp_path / "train.py").write_text(UNIFORM_MODEL)

    done = harness_cli(tmp_path, data_dir)

    assert done.returncode == 0, done.stderr
    block = done.stdout[done.stdout.index("---\n") :].splitlines()
    assert block[:4] == ["---", "status: ok", "val_bpb: 8.000000", "val_loss: 5.545177"]
    assert [line.split(":")[0] for line in block[4:]] == [
        "steps",
        "tokens",
        "train_seconds",
        "eval_seconds",
        "peak_memory_bytes",
        "num_params",
    ]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "ok"
    assert set(result["env"]) == {
        "python", "torch", "triton", "numpy", "device_name", "cuda", "threads", "probe_seconds",
    }  # fmt: skip
    assert result["env"]["threads"] == 1
    assert 0 < result["env"]["probe_seconds"] < result["metrics"]["eval_seconds"]


def test_cli_exits_2_without_a_result_when_the_data_is_missing(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, _ = track
    (tmp_path / "spec.json").write_text(spec.dumps())
    (tmp_path / "train.py").write_text("def train(ctx):\n    raise AssertionError('never runs')\n")
    (tmp_path / "empty").mkdir()

    done = harness_cli(tmp_path, tmp_path / "empty")

    assert done.returncode == 2
    assert done.stderr.startswith("harness: error: cannot read the track's data: ")
    assert not (tmp_path / "result.json").exists()


def harness_cli(folder: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "worker.harness", "--train-py", str(folder / "train.py")]
    command += ["--spec", str(folder / "spec.json"), "--data-dir", str(data_dir), "--seed", "1"]
    command += ["--device", "cpu", "--threads", "1", "--result", str(folder / "result.json")]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
