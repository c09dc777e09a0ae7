"""The baseline variant: it scores like a uniform model untrained, learns, and survives mutation."""

from __future__ import annotations

import ast
import importlib.util
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from shared.data_format import read_tokens
from shared.track_spec import TrackSpec
from tests.trackfactory import build_track
from worker.harness.context import TrainBatches, TrainClock, TrainContext
from worker.harness.progress import ProgressChannel
from worker.runner import PROJECT_ROOT, HarnessResult, run_harness

BASELINE = PROJECT_ROOT / "baseline" / "train.py"
UNTRAINED = "from baseline.train import build_model\n\n\ndef train(ctx):\n    return build_model(ctx)\n"
ALLOWED_IMPORTS = {"__future__", "math", "dataclasses", "torch", "torch.nn", "torch.nn.functional"}


def run(tmp_path: Path, spec: TrackSpec, data_dir: Path, train_py: Path) -> HarnessResult:
    return run_harness(
        train_py=train_py,
        spec=spec,
        data_dir=data_dir,
        seed=1,
        workdir=tmp_path / "work",
        device="cpu",
        threads=2,
    )


def write_untrained(tmp_path: Path) -> Path:
    path = tmp_path / "untrained.py"
    path.write_text(UNTRAINED)
    return path


def test_untrained_baseline_predicts_uniformly_so_scores_eight_bits_per_byte(tmp_path: Path) -> None:
    spec, data_dir = build_track(tmp_path)

    result = run(tmp_path, spec, data_dir, write_untrained(tmp_path))

    assert (result.status, result.reason) == ("ok", None)
    assert result.metrics["val_bpb"] == pytest.approx(8.0, rel=1e-6)


def test_baseline_learns_within_a_three_second_budget(tmp_path: Path) -> None:
    spec, data_dir = build_track(tmp_path, time_budget_s=3.0, grace_s=5.0)

    result = run(tmp_path, spec, data_dir, BASELINE)

    assert (result.status, result.reason) == ("ok", None), result.log_tail
    assert result.metrics["steps"] >= 1
    assert result.metrics["tokens"] >= result.metrics["steps"] * 16 * spec.seq_len
    assert math.isfinite(result.metrics["val_bpb"])
    assert result.metrics["val_bpb"] < 8.0  # the untrained figure on this byte-level track


@pytest.mark.slow
def test_baseline_beats_the_untrained_model_on_a_cpu_tiny_sized_track_in_a_minute(tmp_path: Path) -> None:
    # cpu-tiny's shape: vocab 512 (bytes plus merges), seq 128, 32768 eval tokens, 60 s on a CPU.
    spec, data_dir = build_track(
        tmp_path,
        vocab_size=512,
        seq_len=128,
        eval_tokens=32_768,
        eval_batch_size=16,
        time_budget_s=60.0,
        grace_s=12.0,
        n_train_tokens=400_000,
    )

    untrained = run(tmp_path / "untrained", spec, data_dir, write_untrained(tmp_path))
    trained = run(tmp_path / "trained", spec, data_dir, BASELINE)

    print(f"untrained val_bpb {untrained.metrics['val_bpb']:.4f}")
    print(f"baseline val_bpb {trained.metrics['val_bpb']:.4f} after {trained.metrics['steps']} steps")
    assert (trained.status, untrained.status) == ("ok", "ok")
    assert trained.metrics["val_bpb"] < 0.8 * untrained.metrics["val_bpb"]


def test_baseline_imports_only_what_a_bare_gpu_box_has() -> None:
    tree = ast.parse(BASELINE.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert imported <= ALLOWED_IMPORTS


# --- mutation: every UPPER_CASE constant may change alone --------------------------------------


def hyperparameters(source: str) -> dict[str, ast.Constant]:
    """Module-level `NAME = <int or float literal>` assignments, as an offline agent sees them."""
    found = {}
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper()
            and isinstance(node.value, ast.Constant)
            and type(node.value.value) in (int, float)
        ):
            found[node.targets[0].id] = node.value
    return found


def mutations() -> Iterator[tuple[str, float]]:
    """Each constant halved and doubled if a float, one step down and up if an int."""
    for name, literal in hyperparameters(BASELINE.read_text()).items():
        value = literal.value
        if isinstance(value, float):
            yield from ((name, value * 0.5), (name, value * 2.0))
        elif isinstance(value, int):
            yield from ((name, value - 1), (name, value + 1))


def with_constant(source: str, name: str, value: float) -> str:
    literal = hyperparameters(source)[name]
    lines = source.splitlines(keepends=True)
    line = lines[literal.lineno - 1]
    lines[literal.lineno - 1] = line[: literal.col_offset] + repr(value) + line[literal.end_col_offset :]
    return "".join(lines)


def load(path: Path) -> ModuleType:
    name = f"mutated_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), n_train_tokens=20_000)


def make_ctx(spec: TrackSpec, data_dir: Path, *, hardware_class: str) -> TrainContext:
    shards = [read_tokens(data_dir / digest) for digest in spec.assets.train]
    clock = TrainClock(60.0)
    clock.start()
    return TrainContext(
        device="cpu",
        seed=0,
        vocab_size=spec.vocab_size,
        seq_len=spec.seq_len,
        hardware_class=hardware_class,
        track_id=spec.track_id,
        clock=clock,
        batches=TrainBatches(shards, seed=0, device="cpu"),
        progress=ProgressChannel(None),
    )


def test_the_mutable_hyperparameters_cover_both_shapes_and_the_schedule() -> None:
    names = set(hyperparameters(BASELINE.read_text()))

    assert {"CPU_DEPTH", "CPU_D_MODEL", "GPU_DEPTH", "GPU_D_MODEL", "WARMUP_FRACTION", "ADAM_BETA2"} <= names


@pytest.mark.parametrize(("name", "value"), list(mutations()), ids=lambda v: str(v))
def test_baseline_still_builds_and_steps_with_one_constant_mutated(
    tmp_path: Path, small_track: tuple[TrackSpec, Path], name: str, value: float
) -> None:
    mutated = tmp_path / f"{name.lower()}.py"
    mutated.write_text(with_constant(BASELINE.read_text(), name, value))
    module = load(mutated)
    # GPU_* constants only shape the model on a GPU track; build that shape (on the CPU) to test them.
    ctx = make_ctx(*small_track, hardware_class="h100-80gb" if name.startswith("GPU_") else "cpu")
    torch.manual_seed(0)

    model = module.build_model(ctx)
    optimizer = module.build_optimizer(model, learning_rate=1e-3, fused=False)
    x, y = next(ctx.batches(1, 16))
    loss = model.loss(x, y)
    loss.backward()
    optimizer.step()

    assert math.isfinite(loss.item())
    assert model(x).shape == (1, 16, ctx.vocab_size)
    multipliers = [module.lr_multiplier(p) for p in np.linspace(0.0, 1.2, 25)]
    assert all(math.isfinite(m) and m >= 0.0 for m in multipliers)
