"""Training throughput of a train.py's model with the Triton kernels off and on: tok/s, MFU, peak memory.

Both runs happen in one process, on the same initial weights and the same random tokens, at
autoresearch's shape by default: the model file's shape for a GPU track (for baseline/train.py:
depth 8, d_model 512, 4 heads of 128) at vocab 8192 and seq 2048, 2^19 tokens per optimizer step
by gradient accumulation over micro-batches of 128 x 2048.

    python bench/train_throughput.py                          # on a CUDA GPU, baseline/train.py
    python bench/train_throughput.py --device-batch 64        # if 128 x 2048 does not fit
    python bench/train_throughput.py --device cpu --small --steps 2   # a CPU smoke run

The model file must provide (the hook this script relies on; baseline/train.py's own interface):
    build_model(ctx) -> nn.Module, reading ctx.hardware_class, ctx.vocab_size, ctx.seq_len and
                   ctx.device, whose model.loss(idx, targets) returns the mean loss;
    USE_TRITON_KERNELS, a module-level bool that the model reads when it is built or run (not
                   only at import), since this script sets it before building each model.
Without the flag only the kernels-off run happens, and the script says so. Importing the file must
not start any work. Optionally:
    build_optimizers(model, *, fused) -> list of torch optimizers, the ones train() steps
                   (baseline/train.py: Muon for the blocks' matrices, AdamW for the rest), so the
                   optimizer's share of a step is measured too. Without it, one torch AdamW.

What is timed: --steps optimizer steps after --warmup untimed ones (which absorb torch.compile),
each being forward+backward on every micro-batch and one step of every optimizer, at their peak
learning rates. Both runs use the same optimizers, so the ratio isolates the model's kernels.

MFU = tok/s x FLOPs/token / peak, FLOPs/token = 6 N + 12 L d T. N counts the parameters of
matmuls (all parameters with two or more dimensions except nn.Embedding tables, so the untied head
counts). 12 L d T is attention: QK^T and AV cost 2 x 2 x T x d FLOPs per token and layer forward,
x3 for forward+backward, over the full T x T square as autoresearch and PaLM count it, although a
causal mask needs only half. L, d and T are read off the model's own scaled_dot_product_attention
calls in one forward (d = heads x head_dim, T = key length), so a variant's shape is counted as it
is. The peak defaults to 989.5 TFLOP/s (H100 SXM, dense bf16).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the model file imports shared.kernels

H100_SXM_BF16_TFLOPS = 989.5
KERNEL_FLAG = "USE_TRITON_KERNELS"


class HookError(Exception):
    """The model file does not provide what this script needs; the message says what is missing."""


@dataclass(frozen=True)
class Preset:
    name: str
    hardware_class: str  # picks the model file's shape
    vocab_size: int
    seq_len: int
    tokens_per_step: int
    device_batch: int


AUTORESEARCH = Preset(
    "autoresearch", "h100-sxm-80gb", vocab_size=8192, seq_len=2048, tokens_per_step=1 << 19, device_batch=128
)
SMALL = Preset("small", "cpu", vocab_size=256, seq_len=64, tokens_per_step=256, device_batch=2)


@dataclass(frozen=True)
class ModelContext:
    """The part of the harness's ctx that build_model reads."""

    hardware_class: str
    vocab_size: int
    seq_len: int
    device: str


@dataclass
class RunResult:
    use_triton_kernels: bool
    compiled: bool
    steps: int = 0
    seconds: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    peak_memory_mib: float | None = None
    first_loss: float | None = None  # the first step's mean loss, before any update
    optimizer: str | None = None  # what stepped the parameters
    last_loss: float | None = None
    error: str | None = None


def load_model_module(path: Path) -> ModuleType:
    if not path.is_file():
        raise HookError(f"{path}: no such file (pass --model-file PATH to a train.py that defines the hook)")
    spec = importlib.util.spec_from_file_location("model_under_benchmark", path)
    if spec is None or spec.loader is None:
        raise HookError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    if not callable(getattr(module, "build_model", None)):
        raise HookError(
            f"{path} does not define build_model(ctx): this benchmark needs build_model(ctx) -> nn.Module "
            "with model.loss(idx, targets) -> mean loss"
        )
    return module


def build(module: ModuleType, ctx: ModelContext, *, use_triton_kernels: bool) -> nn.Module:
    if hasattr(module, KERNEL_FLAG):
        setattr(module, KERNEL_FLAG, use_triton_kernels)
    elif use_triton_kernels:
        raise HookError(f"the model file has no module-level {KERNEL_FLAG} flag")
    model: nn.Module = module.build_model(ctx)
    if not callable(getattr(model, "loss", None)):
        raise HookError("build_model(ctx) returned a model without a loss(idx, targets) method")
    return model.to(ctx.device)


def build_optimizers(
    module: ModuleType, model: nn.Module, *, fused: bool
) -> tuple[list[torch.optim.Optimizer], str]:
    """The model file's own optimizers if it defines build_optimizers(model, *, fused), else AdamW."""
    hook = getattr(module, "build_optimizers", None)
    if callable(hook):
        optimizers = list(hook(model, fused=fused))
        names = ", ".join(type(optimizer).__name__ for optimizer in optimizers)
        return optimizers, f"build_optimizers: {names}"
    return [torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)], "torch AdamW (lr 1e-4)"


def matmul_parameter_count(model: nn.Module) -> int:
    """Parameters that take part in matmuls: every >=2-D parameter except embedding tables (lookups)."""
    embedding_tables = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return sum(p.numel() for p in model.parameters() if p.dim() >= 2 and id(p) not in embedding_tables)


class _AttentionRecorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[torch.Size, torch.Size]] = []  # (query, key), each (B, H, T, D)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is F.scaled_dot_product_attention:
            self.shapes.append((args[0].shape, args[1].shape))
        return func(*args, **(kwargs or {}))


def attention_flops_per_token(model: nn.Module, ctx: ModelContext) -> tuple[int, int, int]:
    """(12 L d T, L, d) from the attention calls of one forward over one sequence."""
    idx = torch.zeros((1, ctx.seq_len), dtype=torch.long, device=ctx.device)
    recorder = _AttentionRecorder()
    with torch.no_grad(), recorder:
        model.loss(idx, idx)  # type: ignore[operator]
    flops = 0
    for query, key in recorder.shapes:
        heads, head_dim, key_len = query[-3], query[-1], key[-2]
        flops += 12 * heads * head_dim * key_len
    width = recorder.shapes[0][0][-3] * recorder.shapes[0][0][-1] if recorder.shapes else 0
    return flops, len(recorder.shapes), width


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark(
    module: ModuleType,
    ctx: ModelContext,
    *,
    use_triton_kernels: bool,
    device_batch: int,
    accumulation: int,
    warmup: int,
    steps: int,
    compile_model: bool,
    seed: int,
) -> RunResult:
    result = RunResult(use_triton_kernels=use_triton_kernels, compiled=compile_model)
    device = torch.device(ctx.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(seed)
    model = build(module, ctx, use_triton_kernels=use_triton_kernels)
    model.train()
    loss_of: Callable[..., torch.Tensor] = model.loss  # type: ignore[assignment]
    if compile_model:
        loss_of = torch.compile(loss_of)
    optimizers, result.optimizer = build_optimizers(module, model, fused=device.type == "cuda")
    tokens = torch.Generator(device=device).manual_seed(seed)

    def train_step() -> torch.Tensor:
        # Precision is the model's own business (baseline/train.py autocasts to bf16 on CUDA).
        total = torch.zeros((), device=device)
        for _ in range(accumulation):
            batch = torch.randint(
                ctx.vocab_size, (device_batch, ctx.seq_len + 1), generator=tokens, device=device
            )
            loss = loss_of(batch[:, :-1], batch[:, 1:])
            (loss / accumulation).backward()
            total += loss.detach().float()
        for optimizer in optimizers:
            optimizer.step()
        model.zero_grad(set_to_none=True)
        return total / accumulation

    losses = [train_step() for _ in range(warmup)]
    _synchronize(device)
    start = time.perf_counter()
    losses += [train_step() for _ in range(steps)]
    _synchronize(device)
    result.seconds = time.perf_counter() - start
    values = [loss.item() for loss in losses]
    if not all(torch.isfinite(torch.tensor(values))):
        raise FloatingPointError(f"non-finite training loss: {values}")
    result.steps = steps
    result.first_loss, result.last_loss = values[0], values[-1]
    result.tokens_per_s = steps * accumulation * device_batch * ctx.seq_len / result.seconds
    if device.type == "cuda":
        result.peak_memory_mib = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def _release(device: torch.device) -> None:
    torch._dynamo.reset()  # drop the previous model's compiled graphs
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _format_report(report: dict[str, Any]) -> str:
    def fmt(value: float | None, spec: str) -> str:
        width = int(spec.split(".")[0].rstrip(","))
        return f"{'-':>{width}}" if value is None else format(value, spec)

    lines = [
        f"model file: {report['model_file']}   device: {report['device']}   torch {report['torch']}",
        f"preset {report['preset']}: hardware class {report['hardware_class']}, vocab {report['vocab_size']}, "
        f"seq {report['seq_len']}; {report['parameters'] / 1e6:.2f}M parameters, "
        f"{report['attention_layers']} attention layers of width {report['attention_width']}",
        f"tokens/step: {report['tokens_per_step']} = {report['device_batch']} x {report['seq_len']} x "
        f"{report['accumulation']} micro-batches",
        f"FLOPs/token: 6N + 12LdT = 6 x {report['matmul_params']} + {report['attention_flops_per_token']} "
        f"= {report['flops_per_token']:.4g}   peak for MFU: {report['peak_tflops']} TFLOP/s",
        "",
        f"{'kernels':<8} {'compiled':<9} {'tok/s':>12} {'MFU':>7} {'peak MiB':>9} {'s/step':>8} "
        f"{'first loss':>11} {'last loss':>10}",
    ]
    for run in report["runs"]:
        per_step = run["seconds"] / run["steps"] if run["seconds"] is not None and run["steps"] else None
        mfu = f"{100 * run['mfu']:6.1f}%" if run["mfu"] is not None else f"{'-':>7}"
        line = (
            f"{'on' if run['use_triton_kernels'] else 'off':<8} {'yes' if run['compiled'] else 'no':<9} "
            f"{fmt(run['tokens_per_s'], '12,.0f')} {mfu} {fmt(run['peak_memory_mib'], '9.0f')} "
            f"{fmt(per_step, '8.3f')} {fmt(run['first_loss'], '11.5f')} {fmt(run['last_loss'], '10.5f')}"
        )
        lines.append(line + (f"  error: {run['error']}" if run["error"] else ""))
    ratio = report["ratio_on_over_off"]
    optimizer = report["runs"][0]["optimizer"] if report["runs"] else None
    lines.append(f"optimizer: {optimizer or '-'}")
    lines.append("")
    lines.append(f"throughput ratio, kernels on / off: {ratio:.3f}x" if ratio else "throughput ratio: n/a")
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--model-file", type=Path, default=REPO_ROOT / "baseline" / "train.py", help="train.py to load")
    add("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda or cpu")
    add("--small", action="store_true", help="the file's cpu-track model, tiny batches: a CPU smoke run")
    add("--steps", type=int, default=10, help="timed optimizer steps per run")
    add("--warmup", type=int, default=3, help="untimed optimizer steps first (compilation)")
    add("--device-batch", type=int, help="sequences per micro-batch (default 128; 2 with --small)")
    add("--tokens-per-step", type=int, help="tokens per optimizer step (default 2^19; 256 with --small)")
    add(
        "--compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="torch.compile model.loss (auto: CUDA)",
    )
    add("--peak-tflops", type=float, default=H100_SXM_BF16_TFLOPS, help="peak for MFU, in TFLOP/s")
    add("--vocab-size", type=int, help="the model's vocabulary (default 8192; 256 with --small)")
    add("--seed", type=int, default=0, help="seed for weights and tokens, shared by both runs")
    add("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA GPU")
    preset = SMALL if args.small else AUTORESEARCH
    if args.vocab_size is not None:
        if args.vocab_size < 2:
            parser.error(f"--vocab-size must be at least 2, got {args.vocab_size}")
        preset = dataclasses.replace(preset, vocab_size=args.vocab_size)
    args.preset = preset
    args.device_batch = args.device_batch or preset.device_batch
    args.tokens_per_step = args.tokens_per_step or preset.tokens_per_step
    if args.tokens_per_step % (args.device_batch * preset.seq_len):
        parser.error(
            f"--tokens-per-step {args.tokens_per_step} is not a multiple of "
            f"device batch x seq = {args.device_batch * preset.seq_len}"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    preset: Preset = args.preset
    device = torch.device(args.device)
    ctx = ModelContext(preset.hardware_class, preset.vocab_size, preset.seq_len, str(device))
    accumulation = args.tokens_per_step // (args.device_batch * preset.seq_len)
    compile_model = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")

    try:
        module = load_model_module(args.model_file)
        counted = build(module, ctx, use_triton_kernels=False)
    except HookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    matmul_params = matmul_parameter_count(counted)
    attention_flops, attention_layers, attention_width = attention_flops_per_token(counted, ctx)
    parameters = sum(p.numel() for p in counted.parameters())
    del counted

    from shared.kernels import use_triton

    notes = []
    settings = [False, True]
    if not hasattr(module, KERNEL_FLAG):
        settings = [False]
        notes.append(
            f"{args.model_file} has no module-level {KERNEL_FLAG} flag yet, so only the plain-torch run was "
            f"measured; define {KERNEL_FLAG} and read it when the model is built or run"
        )
    elif not use_triton(torch.empty(0, device=device)):
        notes.append(
            "shared.kernels takes its Triton path only for CUDA tensors (or under TRITON_INTERPRET=1), so both "
            "runs here executed the same plain-torch code"
        )
    if device.type != "cuda":
        notes.append("CPU run: no MFU (the peak is a GPU's), no peak memory (torch tracks it on CUDA only)")

    per_token = 6 * matmul_params + attention_flops
    runs: list[RunResult] = []
    for use_triton_kernels in settings:
        try:
            run = benchmark(
                module,
                ctx,
                use_triton_kernels=use_triton_kernels,
                device_batch=args.device_batch,
                accumulation=accumulation,
                warmup=args.warmup,
                steps=args.steps,
                compile_model=compile_model,
                seed=args.seed,
            )
        except Exception as exc:  # report the other run even if this one fails (OOM, compile error)
            # The end of the message: a compiler's error names its cause last, after the traceback.
            message = " ".join(str(exc).split())
            run = RunResult(
                use_triton_kernels=use_triton_kernels,
                compiled=compile_model,
                error=f"{type(exc).__name__}: {message if len(message) <= 600 else '...' + message[-600:]}",
            )
        if run.tokens_per_s is not None and device.type == "cuda":
            run.mfu = run.tokens_per_s * per_token / (args.peak_tflops * 1e12)
        runs.append(run)
        _release(device)

    speeds = [run.tokens_per_s for run in runs]
    report = {
        "model_file": str(args.model_file),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "preset": preset.name,
        "hardware_class": preset.hardware_class,
        "vocab_size": preset.vocab_size,
        "seq_len": preset.seq_len,
        "tokens_per_step": args.tokens_per_step,
        "device_batch": args.device_batch,
        "accumulation": accumulation,
        "parameters": parameters,
        "matmul_params": matmul_params,
        "attention_layers": attention_layers,
        "attention_width": attention_width,
        "attention_flops_per_token": attention_flops,
        "flops_per_token": per_token,
        "peak_tflops": args.peak_tflops,
        "runs": [dataclasses.asdict(run) for run in runs],
        "ratio_on_over_off": speeds[1] / speeds[0] if len(speeds) == 2 and speeds[0] and speeds[1] else None,
        "notes": notes,
    }
    print(json.dumps(report, indent=2) if args.json else _format_report(report))
    return 0 if all(run.error is None for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
