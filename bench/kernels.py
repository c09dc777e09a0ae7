"""Forward+backward time and peak memory of each Triton kernel against eager torch and torch.compile.

Each kernel is timed as one forward plus one backward to all its inputs, at the baseline's shapes
on a GPU (d=512, 4 heads of 128, vocab 8192, seq 2048, 2^16 tokens by default) and at small shapes
on a CPU. "eager" and "compiled" run `shared.kernels.reference`, the plain-torch definition.

    python bench/kernels.py                     # on a CUDA GPU
    python bench/kernels.py --tokens 262144     # autoresearch's micro-batch (128 x 2048)
    python bench/kernels.py --device cpu        # small shapes; Triton skipped
    TRITON_INTERPRET=1 python bench/kernels.py --device cpu --no-compile   # interpreter smoke run

Times are medians over --reps runs after --warmup runs (CUDA events on a GPU, perf_counter on a
CPU). Peak memory is what one forward+backward allocates beyond its inputs (GPU only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from shared import kernels
from shared.kernels import reference

Fn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Shapes:
    tokens: int
    seq_len: int
    d_model: int
    n_heads: int
    head_dim: int
    vocab: int
    mlp_hidden: int
    softcap: float = 15.0


GPU_SHAPES = Shapes(
    tokens=1 << 16, seq_len=2048, d_model=512, n_heads=4, head_dim=128, vocab=8192, mlp_hidden=2048
)
CPU_SHAPES = Shapes(tokens=256, seq_len=64, d_model=64, n_heads=2, head_dim=32, vocab=512, mlp_hidden=256)


@dataclass(frozen=True)
class Case:
    """One kernel: fresh inputs (leaves), and the Triton and reference implementations."""

    kernel: str
    make_inputs: Callable[[], list[torch.Tensor]]
    triton: Fn | None
    reference: Fn


@dataclass
class Row:
    kernel: str
    impl: str
    ms: float | None = None
    peak_mib: float | None = None
    max_abs_diff: float | None = None  # of the forward output, against eager
    note: str = ""


def _cases(shapes: Shapes, *, device: torch.device, dtype: torch.dtype) -> list[Case]:
    generator = torch.Generator(device=device).manual_seed(0)

    def randn(*shape: int, scale: float = 1.0, grad: bool = True) -> torch.Tensor:
        t = torch.randn(shape, generator=generator, device=device, dtype=torch.float32) * scale
        return t.to(dtype).requires_grad_(grad)

    batch = max(1, shapes.tokens // shapes.seq_len)
    seq_len = min(shapes.seq_len, shapes.tokens)
    d, vocab, hidden = shapes.d_model, shapes.vocab, shapes.mlp_hidden
    angles = torch.outer(
        torch.arange(seq_len, device=device, dtype=torch.float32),
        1.0
        / 10000
        ** (torch.arange(shapes.head_dim // 2, device=device, dtype=torch.float32) / (shapes.head_dim // 2)),
    )
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    targets = torch.randint(0, vocab, (batch * seq_len,), generator=generator, device=device)
    triton = kernels.TRITON_AVAILABLE
    return [
        Case(
            "rms_norm (N, d)",
            lambda: [randn(batch * seq_len, d)],
            kernels.rms_norm_triton if triton else None,
            reference.rms_norm,
        ),
        Case(
            "rotary (B, T, H, Dh)",
            lambda: [randn(batch, seq_len, shapes.n_heads, shapes.head_dim)],
            (lambda x: kernels.apply_rotary_triton(x, cos, sin)) if triton else None,
            lambda x: reference.apply_rotary(x, cos, sin),
        ),
        Case(
            "softcap CE (N, d)x(V, d)",
            lambda: [randn(batch * seq_len, d), randn(vocab, d, scale=d**-0.5)],
            (lambda h, w: kernels.softcapped_cross_entropy_triton(h, w, targets, softcap=shapes.softcap))
            if triton
            else None,
            lambda h, w: reference.softcapped_cross_entropy(h, w, targets, softcap=shapes.softcap),
        ),
        Case(
            "relu2 MLP (N, d)->4d->d",
            lambda: [
                randn(batch * seq_len, d),
                randn(hidden, d, scale=d**-0.5),
                randn(d, hidden, scale=hidden**-0.5),
            ],
            kernels.relu2_mlp_triton if triton else None,
            reference.relu2_mlp,
        ),
    ]


def _forward_backward(fn: Fn, inputs: list[torch.Tensor], grad_output: torch.Tensor) -> None:
    for t in inputs:
        t.grad = None
    fn(*inputs).backward(grad_output)


def _measure(
    fn: Fn, case: Case, *, device: torch.device, warmup: int, reps: int
) -> tuple[float, float | None]:
    inputs = case.make_inputs()
    with torch.no_grad():
        grad_output = torch.randn_like(fn(*inputs))
    for _ in range(warmup):
        _forward_backward(fn, inputs, grad_output)
    times_ms: list[float] = []
    if device.type == "cuda":
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            _forward_backward(fn, inputs, grad_output)
            end.record()
            torch.cuda.synchronize()
            times_ms.append(start.elapsed_time(end))
        for t in inputs:
            t.grad = None
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        _forward_backward(fn, inputs, grad_output)
        torch.cuda.synchronize()
        return statistics.median(times_ms), (torch.cuda.max_memory_allocated() - before) / 2**20
    for _ in range(reps):
        start_s = time.perf_counter()
        _forward_backward(fn, inputs, grad_output)
        times_ms.append((time.perf_counter() - start_s) * 1e3)
    return statistics.median(times_ms), None


def _max_abs_diff(fn: Fn, case: Case) -> float:
    with torch.no_grad():
        inputs = case.make_inputs()
        return (fn(*inputs).float() - case.reference(*inputs).float()).abs().max().item()


def run(
    *,
    device: torch.device,
    shapes: Shapes,
    dtype: torch.dtype,
    compile_reference: bool,
    warmup: int,
    reps: int,
) -> tuple[list[Row], list[str]]:
    notes: list[str] = []
    run_triton = kernels.use_triton(torch.empty(0, device=device))
    if not kernels.TRITON_AVAILABLE:
        notes.append("Triton is not installed: its rows are skipped.")
    elif not run_triton:
        notes.append(
            "Triton skipped: its kernels run on CUDA tensors (set TRITON_INTERPRET=1 to run them in the CPU interpreter)."
        )
    elif device.type != "cuda":
        notes.append(
            "Triton ran in its CPU interpreter: its times are a smoke test, not performance figures."
        )
    rows: list[Row] = []
    for case in _cases(shapes, device=device, dtype=dtype):
        impls: list[tuple[str, Fn | None, str]] = [
            ("triton", case.triton if run_triton else None, "skipped"),
            ("eager", case.reference, ""),
            (
                "compiled",
                torch.compile(case.reference) if compile_reference else None,
                "skipped (--no-compile)",
            ),
        ]
        for impl, fn, skip_note in impls:
            row = Row(case.kernel, impl)
            rows.append(row)
            if fn is None:
                row.note = skip_note
                continue
            try:
                row.ms, row.peak_mib = _measure(fn, case, device=device, warmup=warmup, reps=reps)
                row.max_abs_diff = _max_abs_diff(fn, case)
            except Exception as exc:  # one failing implementation (OOM, compiler) must not hide the rest
                first_line = (str(exc).splitlines() or [""])[0]
                row.note = f"error: {type(exc).__name__}: {first_line[:120]}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows, notes


def _format_table(rows: list[Row]) -> str:
    def fmt(value: float | None, spec: str) -> str:
        width = int(spec.split(".")[0])
        return f"{'-':>{width}}" if value is None else format(value, spec)

    lines = [f"{'kernel':<26} {'impl':<9} {'fwd+bwd ms':>11} {'peak MiB':>9} {'max|Δ| vs eager':>16}  note"]
    for row in rows:
        lines.append(
            f"{row.kernel:<26} {row.impl:<9} {fmt(row.ms, '11.3f')} {fmt(row.peak_mib, '9.1f')} "
            f"{fmt(row.max_abs_diff, '16.2e')}  {row.note}".rstrip()
        )
    return "\n".join(lines)


def _environment(device: torch.device) -> dict[str, Any]:
    import triton

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"device": name, "torch": torch.__version__, "triton": getattr(triton, "__version__", "?")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda or cpu"
    )
    parser.add_argument("--tokens", type=int, help="tokens per batch (default: 65536 on a GPU, 256 on a CPU)")
    parser.add_argument(
        "--dtype", choices=["bfloat16", "float32"], help="default: bfloat16 on a GPU, float32 on a CPU"
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default: 5 GPU, 2 CPU)")
    parser.add_argument("--reps", type=int, default=None, help="timed runs (default: 20 GPU, 10 CPU)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile(reference) rows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA GPU")
    shapes = GPU_SHAPES if on_gpu else CPU_SHAPES
    if args.tokens:
        shapes = Shapes(**{**asdict(shapes), "tokens": args.tokens})
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if on_gpu else torch.float32)
    rows, notes = run(
        device=device,
        shapes=shapes,
        dtype=dtype,
        compile_reference=not args.no_compile,
        warmup=args.warmup if args.warmup is not None else (5 if on_gpu else 2),
        reps=args.reps if args.reps is not None else (20 if on_gpu else 10),
    )
    meta = {**_environment(device), "dtype": str(dtype).removeprefix("torch."), "shapes": asdict(shapes)}
    if args.json:
        print(json.dumps({**meta, "notes": notes, "rows": [asdict(row) for row in rows]}, indent=2))
    else:
        print(" ".join(f"{key}={value}" for key, value in meta.items()))
        print(_format_table(rows))
        for note in notes:
            print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
