"""One harness run: set up, start the clock, import and train the variant, then evaluate it.

The clock starts *before* the variant module is imported. Import-time code is the variant's code
too: were it free, a variant could train at import and hand `train()` a finished model. So the
budget covers import, compilation and everything `train()` does, and the runner's kill deadline
(counted from the `train_started` event, sent just before the clock starts) covers the same span.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from shared.data_format import read_token_bytes, read_tokens
from shared.track_spec import TrackSpec
from worker.harness.context import TrainBatches, TrainClock, TrainContext
from worker.harness.contract import ContractViolation
from worker.harness.evaluate import evaluate
from worker.harness.modelstate import count_parameters
from worker.harness.probes import standard_probes
from worker.harness.progress import ProgressChannel
from worker.harness.result import (
    CRASHED,
    OK,
    REJECTED,
    HarnessOutcome,
    Metrics,
    environment,
    peak_memory_bytes,
)
from worker.harness.torch_state import TorchSettings
from worker.harness.val_shard import load_val_shard

# The variant's module name, as `train.py` would have if run from its own folder.
VARIANT_MODULE = "train"


class HarnessSetupError(Exception):
    """The run could not start (bad arguments, missing data, no GPU): not the variant's fault."""


class RunFailed(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class HarnessConfig:
    train_py: Path
    spec: TrackSpec
    data_dir: Path
    seed: int
    device: str  # "cpu", "cuda" or "auto"
    threads: int | None
    progress_fd: int | None
    val_fd: int | None = None  # where the val shard's bytes arrive after training; None: from data_dir


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise HarnessSetupError("--device cuda was asked for, but torch sees no CUDA device")
    if requested not in ("cpu", "cuda"):
        raise HarnessSetupError(f"unknown device {requested!r}; use cpu, cuda or auto")
    return requested


def warm_up_torch() -> None:
    """Import what torch loads lazily on first use, so no variant pays for it inside its budget.

    torch.optim imports torch._dynamo when the first optimizer is built: over a second on a CPU,
    which would be charged to whichever variant happened to build one.
    """
    import torch._dynamo  # noqa: F401


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too


def run(config: HarnessConfig) -> HarnessOutcome:
    """Train and score the variant. HarnessSetupError means the worker's setup failed, not the variant."""
    spec = config.spec
    device = resolve_device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        train_shards = [read_tokens(config.data_dir / digest) for digest in spec.assets.train]
        token_bytes = read_token_bytes(config.data_dir / spec.assets.token_bytes, vocab_size=spec.vocab_size)
    except (OSError, ValueError) as exc:
        raise HarnessSetupError(f"cannot read the track's data: {exc}") from exc
    warm_up_torch()
    seed_everything(config.seed)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    settings = TorchSettings.capture()  # as evaluation needs them, before the variant can change any

    progress = ProgressChannel(config.progress_fd)
    clock = TrainClock(spec.time_budget_s)
    ctx = TrainContext(
        device=device,
        seed=config.seed,
        vocab_size=spec.vocab_size,
        seq_len=spec.seq_len,
        hardware_class=spec.hardware_class,
        track_id=spec.track_id,
        clock=clock,
        batches=TrainBatches(train_shards, seed=config.seed, device=device),
        progress=progress,
    )
    metrics = Metrics()
    outcome = HarnessOutcome(status=OK, reason=None, metrics=metrics)
    probe_seconds: float | None = None
    try:
        progress.emit("train_started", time_budget_s=spec.time_budget_s)
        clock.start()
        try:
            model = train_variant(config.train_py, ctx)
        finally:
            if device == "cuda":
                torch.cuda.synchronize()  # queued kernels are training time, not eval time
            metrics.train_seconds = clock.elapsed()
            metrics.steps, metrics.tokens = ctx.steps, ctx.tokens
            progress.flush_progress()
            progress.emit("train_finished", train_seconds=round(metrics.train_seconds, 3))
        metrics.num_params = count_parameters(model)

        val_tokens = open_val_shard(config)
        started = time.monotonic()
        try:
            settings.restore(device=device)
            seed_everything(config.seed)  # a model that draws random numbers in eval draws the same ones
            score = evaluate(
                model,
                val_tokens=val_tokens,
                token_bytes=token_bytes,
                seq_len=spec.seq_len,
                vocab_size=spec.vocab_size,
                eval_tokens=spec.eval_tokens,
                batch_size=spec.eval_batch_size,
                device=device,
                probes=standard_probes(vocab_size=spec.vocab_size),
            )
        except ContractViolation as exc:
            raise RunFailed(REJECTED, str(exc)) from exc
        except Exception as exc:
            raise crash("evaluation raised", exc) from exc
        finally:
            metrics.eval_seconds = time.monotonic() - started
            progress.emit("eval_finished")
        metrics.val_bpb, metrics.val_loss = score.val_bpb, score.val_loss
        probe_seconds = score.probe_seconds
    except RunFailed as failure:
        outcome.status, outcome.reason = failure.status, failure.reason
    metrics.peak_memory_bytes = peak_memory_bytes(device)
    outcome.env = environment(device=device, threads=torch.get_num_threads())
    # Not a RunMetrics field: what the integrity probes cost, for the cost benchmark and the curious.
    outcome.env["probe_seconds"] = probe_seconds
    return outcome


def open_val_shard(config: HarnessConfig) -> np.ndarray:
    """Read only once train() has returned: the val shard is never reachable while the variant trains."""
    try:
        return load_val_shard(config.spec, data_dir=config.data_dir, val_fd=config.val_fd)
    except (OSError, ValueError) as exc:
        raise HarnessSetupError(f"cannot read the val shard: {exc}") from exc


def train_variant(train_py: Path, ctx: TrainContext) -> torch.nn.Module:
    """Import `train_py` and call its `train(ctx)`; turn whatever goes wrong into RunFailed."""
    try:
        module = import_variant(train_py)
    except (Exception, SystemExit) as exc:
        raise crash("importing train.py raised", exc) from exc
    train = getattr(module, "train", None)
    if not callable(train):
        raise RunFailed(REJECTED, "train.py defines no train(ctx) function")
    try:
        model = train(ctx)
    except (Exception, SystemExit) as exc:
        raise crash("train() raised", exc) from exc
    if not isinstance(model, torch.nn.Module):
        raise RunFailed(REJECTED, f"train() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def import_variant(train_py: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(VARIANT_MODULE, train_py)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {train_py}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as a normal import is: dataclasses and torch.compile look it up.
    sys.modules[VARIANT_MODULE] = module
    spec.loader.exec_module(module)
    return module


def crash(what: str, exc: BaseException) -> RunFailed:
    """A "crashed" failure; the traceback goes to stderr (the worker's log) for whoever debugs it."""
    traceback.print_exception(exc, file=sys.stderr)
    return RunFailed(CRASHED, describe(what, exc))


def describe(what: str, exc: BaseException) -> str:
    """One line, e.g. `train() raised ValueError: bad shape`: the message's last line says why."""
    lines = str(exc).strip().splitlines()
    name = type(exc).__name__
    return f"{what} {name}: {lines[-1].strip()}" if lines else f"{what} {name}"
