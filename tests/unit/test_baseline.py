"""The baseline variant: it scores like a uniform model untrained, learns, and survives mutation."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import subprocess
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
from worker.execution import Executor, Outcome, RunRequest
from worker.execution.context import TrainBatches, TrainClock, TrainContext
from worker.execution.progress import ProgressChannel
from worker.execution.sandbox import PROJECT_ROOT

BASELINE = PROJECT_ROOT / "baseline" / "train.py"
KERNELS = PROJECT_ROOT / "shared" / "kernels"
# The baseline with a train() that builds the model and returns it untouched: what a variant that
# learnt nothing scores. A variant is one file, so the override goes at its end.
UNTRAINED = BASELINE.read_text() + "\n\ndef train(ctx):\n    return build_model(ctx)\n"
# What a bare GPU box has: the standard library, torch, triton and numpy. The baseline may also use
# the project's kernels, which themselves stay within that set.
BARE_BOX_PACKAGES = {"torch", "triton", "numpy"}


def run(tmp_path: Path, spec: TrackSpec, data_dir: Path, source: str) -> Outcome:
    """`source` the way a lease runs it: the policy, the sandbox, the guard, the scorer.

    One thread: on a small, busy machine two threads make some forwards stall for a second or more
    (a thread of the pair waits for a core), which the scorer's slow_forward check refuses.
    """
    executor = Executor.detect(device="cpu", threads=1)
    return executor.run(RunRequest(source=source, spec=spec, data_dir=data_dir, seed=1, workdir=tmp_path / "work"))


def test_untrained_baseline_predicts_uniformly_so_scores_eight_bits_per_byte(tmp_path: Path) -> None:
    spec, data_dir = build_track(tmp_path)

    result = run(tmp_path, spec, data_dir, UNTRAINED)

    assert (result.status, result.reason) == ("ok", None), result.log_tail
    assert result.metrics["val_bpb"] == pytest.approx(8.0, rel=1e-6)


def test_baseline_learns_within_a_three_second_budget(tmp_path: Path) -> None:
    spec, data_dir = build_track(tmp_path, time_budget_s=3.0, grace_s=5.0)

    result = run(tmp_path, spec, data_dir, BASELINE.read_text())

    assert (result.status, result.reason) == ("ok", None), result.log_tail
    assert result.metrics["steps"] >= 1
    assert result.metrics["tokens"] >= result.metrics["steps"] * 16 * spec.seq_len
    assert math.isfinite(result.metrics["val_bpb"])
    assert result.metrics["val_bpb"] < 8.0  # the untrained figure on this byte-level track


@pytest.mark.slow
def test_baseline_beats_the_untrained_model_on_a_cpu_tiny_sized_track_in_twenty_seconds(tmp_path: Path) -> None:
    # cpu-tiny's shape: vocab 512 (bytes plus merges), seq 128, 32768 eval tokens; a third of its
    # 60 s budget (bench/cpu_tiny_score.py measures the full one).
    spec, data_dir = build_track(
        tmp_path,
        vocab_size=512,
        seq_len=128,
        eval_tokens=32_768,
        eval_batch_size=16,
        time_budget_s=20.0,
        grace_s=5.0,
        n_train_tokens=400_000,
    )

    untrained = run(tmp_path / "untrained", spec, data_dir, UNTRAINED)
    trained = run(tmp_path / "trained", spec, data_dir, BASELINE.read_text())

    assert (trained.status, untrained.status) == ("ok", "ok"), (trained.reason, untrained.reason)
    print(f"untrained val_bpb {untrained.metrics['val_bpb']:.4f}")
    print(f"baseline val_bpb {trained.metrics['val_bpb']:.4f} after {trained.metrics['steps']} steps")
    assert (trained.status, untrained.status) == ("ok", "ok")
    assert trained.metrics["val_bpb"] < 0.8 * untrained.metrics["val_bpb"]


def imported_modules(path: Path) -> set[str]:
    """Every module the file's import statements name; a relative import counts as shared.kernels'."""
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(f"shared.kernels.{node.module or ''}" if node.level else str(node.module))
    return names


def outside_the_bare_box(modules: set[str], *, project: str | None) -> set[str]:
    def allowed(name: str) -> bool:
        root = name.partition(".")[0]
        in_project = project is not None and (name == project or name.startswith(project + "."))
        return root in sys.stdlib_module_names or root in BARE_BOX_PACKAGES or in_project

    return {name for name in modules if not allowed(name)}


def test_baseline_imports_only_the_standard_library_torch_triton_numpy_and_shared_kernels() -> None:
    imported = imported_modules(BASELINE)

    assert "shared.kernels" in imported  # the fused kernels are what the GPU path runs
    assert outside_the_bare_box(imported, project="shared.kernels") == set()


def test_shared_kernels_import_only_the_standard_library_torch_triton_and_numpy() -> None:
    for path in sorted(KERNELS.glob("*.py")):
        imported = imported_modules(path)

        assert outside_the_bare_box(imported, project="shared.kernels") == set(), path.name


def test_importing_the_baseline_loads_no_package_a_bare_gpu_box_lacks() -> None:
    # What torch and numpy pull in themselves is theirs; anything new beyond them comes from us.
    probe = f"""
import importlib.util, json, sys
import numpy, torch
try:
    import triton
except ImportError:
    pass
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("baseline_train", {str(BASELINE)!r})
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
print(json.dumps(sorted(set(sys.modules) - before - {{spec.name}})))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))

    assert "shared.kernels" in loaded
    assert outside_the_bare_box(loaded, project="shared.kernels") == {"shared"}  # the bare namespace


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


class SteppedClock(TrainClock):
    """A budget clock that moves only when a step is reported, by `step_s` each time.

    The baseline's stopping rule then meets the same step times on a loaded machine as on an idle
    one, so a test of the rule does not hang on the scheduler.
    """

    def __init__(self, budget_s: float, *, step_s: float) -> None:
        super().__init__(budget_s)
        self.step_s = step_s
        self.now = 0.0

    def elapsed(self) -> float:
        return self.now


class SteppedProgress(ProgressChannel):
    """Progress that advances a SteppedClock by one step on each report."""

    def __init__(self, clock: SteppedClock) -> None:
        super().__init__(None)
        self._clock = clock

    def progress(self, *, step: int, loss: float | torch.Tensor, elapsed_s: float) -> None:
        self._clock.now += self._clock.step_s
        super().progress(step=step, loss=loss, elapsed_s=elapsed_s)


def make_ctx(
    spec: TrackSpec,
    data_dir: Path,
    *,
    hardware_class: str,
    budget_s: float = 60.0,
    clock: TrainClock | None = None,
) -> TrainContext:
    shards = [read_tokens(data_dir / digest) for digest in spec.assets.train]
    if clock is None:
        clock = TrainClock(budget_s)
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
        progress=SteppedProgress(clock) if isinstance(clock, SteppedClock) else ProgressChannel(None),
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
    optimizers = module.build_optimizers(model, fused=False)
    x, y = next(ctx.batches(1, 16))
    loss = model.loss(x, y)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()

    assert math.isfinite(loss.item())
    assert model(x).shape == (1, 16, ctx.vocab_size)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    batching = module.choose_batching(ctx.hardware_class, 2048)
    assert batching.sequences >= 1 and batching.accumulation >= 1
    multipliers = [module.lr_multiplier(p) for p in np.linspace(0.0, 1.2, 25)]
    assert all(math.isfinite(m) and m >= 0.0 for m in multipliers)


# --- the GPU path, exercised on the CPU as far as it goes ----------------------------------------


@pytest.fixture
def baseline(tmp_path: Path) -> ModuleType:
    """A private copy of baseline/train.py, so a test may set its constants without touching others."""
    path = tmp_path / "baseline_copy.py"
    path.write_text(BASELINE.read_text())
    return load(path)


def set_constants(module: ModuleType, **values: float) -> None:
    """Set UPPER_CASE constants, which the baseline reads when it builds and trains, not at import."""
    for name, value in values.items():
        assert hasattr(module, name), name
        setattr(module, name, value)


def shrink_gpu_shape(module: ModuleType, *, seq_len: int) -> None:
    """The GPU code path at a size a CPU trains in seconds: 2 sequences per pass, 2 passes per step."""
    set_constants(
        module,
        GPU_DEPTH=2,
        GPU_D_MODEL=32,
        GPU_HEAD_DIM=16,
        GPU_MICRO_BATCH_TOKENS=2 * seq_len,
        GPU_BATCH_TOKENS=4 * seq_len,
    )


def test_a_gpu_track_gets_autoresearch_s_shape_and_two_to_the_nineteen_tokens_per_step(
    baseline: ModuleType,
) -> None:
    shape = baseline.choose_shape("h100-80gb")
    batching = baseline.choose_batching("h100-80gb", 2048)

    assert (shape.depth, shape.d_model, shape.n_head, shape.head_dim) == (8, 512, 4, 128)
    assert (batching.sequences, batching.accumulation) == (128, 2)
    assert batching.sequences * 2048 * batching.accumulation == 2**19
    assert baseline.choose_batching("cpu", 2048) == baseline.Batching(sequences=16, accumulation=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 48, 16), (2, 16, 48), (4, 64, 64)], ids=str)
def test_newton_schulz_brings_every_singular_value_near_one(
    baseline: ModuleType, dtype: torch.dtype, shape: tuple[int, ...]
) -> None:
    # Ill-conditioned on purpose: singular values spread over four orders of magnitude.
    g = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    g = g * torch.logspace(-2, 2, shape[-1])

    out = baseline.orthogonalize(g, steps=5, dtype=dtype)

    assert out.shape == g.shape and out.dtype == dtype
    singular_values = torch.linalg.svdvals(out.float())
    # The quintic's fixed band is about [0.7, 1.2]; the smallest values of a 1e4-spread input stay
    # below it after five steps, as in Muon, but none grows past it or flips sign.
    assert singular_values.max() < 1.3
    assert (singular_values.median(dim=-1).values > 0.6).all()


def test_training_on_a_gpu_track_accumulates_every_micro_batch_into_each_step(
    baseline: ModuleType, small_track: tuple[TrackSpec, Path]
) -> None:
    spec, data_dir = small_track
    shrink_gpu_shape(baseline, seq_len=spec.seq_len)
    # Each step "takes" 0.7 s of a 3 s budget: after four steps 0.2 s is left, less than the 1.25
    # steps the baseline keeps in hand, so it stops there, before the budget is spent.
    clock = SteppedClock(3.0, step_s=0.7)
    ctx = make_ctx(spec, data_dir, hardware_class="h100-80gb", clock=clock)
    torch.manual_seed(0)

    model = baseline.train(ctx)

    assert ctx.steps == 4
    assert ctx.tokens == ctx.steps * 2 * 2 * spec.seq_len  # every step: 2 passes of 2 sequences
    assert ctx.time_left() == pytest.approx(0.2)  # it stopped while a step still fitted
    assert len(model.blocks) == 2


def test_the_bf16_autocast_path_trains_with_fp32_weights_and_an_fp32_loss(
    baseline: ModuleType, small_track: tuple[TrackSpec, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, data_dir = small_track
    shrink_gpu_shape(baseline, seq_len=spec.seq_len)
    ctx = make_ctx(spec, data_dir, hardware_class="h100-80gb")
    torch.manual_seed(0)
    model = baseline.build_model(ctx)
    torch.nn.init.normal_(model.head.weight, std=0.05)  # a zero head would make every loss ln(V)
    x, y = next(ctx.batches(2))
    fp32_loss = model.loss(x, y)
    # What CUDA runs: the same model under bf16 autocast (on a CPU here, where autocast also works).
    monkeypatch.setattr(
        baseline, "bf16_autocast", lambda device: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    )

    loss = model.loss(x, y)
    loss.backward()
    for optimizer in baseline.build_optimizers(model, fused=False):
        optimizer.step()

    assert loss.dtype == torch.float32 and model(x).dtype == torch.float32
    assert loss.item() == pytest.approx(fp32_loss.item(), rel=2e-2)
    assert all(p.dtype == torch.float32 and p.grad is not None for p in model.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_training_loss_traces_into_one_graph_for_torch_compile(
    baseline: ModuleType, small_track: tuple[TrackSpec, Path]
) -> None:
    # On CUDA, train() compiles model.loss; a graph break there would cost speed silently.
    spec, data_dir = small_track
    set_constants(baseline, CPU_DEPTH=1, CPU_D_MODEL=32, CPU_HEAD_DIM=16, USE_TRITON_KERNELS=False)
    ctx = make_ctx(spec, data_dir, hardware_class="cpu")
    torch.manual_seed(0)
    model = baseline.build_model(ctx)
    x, y = next(ctx.batches(2))
    compiled = torch.compile(model.loss, backend="aot_eager", fullgraph=True, dynamic=False)

    loss = compiled(x, y)

    assert loss.item() == pytest.approx(model.loss(x, y).item(), rel=1e-5)
