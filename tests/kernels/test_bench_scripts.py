"""The benchmark scripts run end to end on a CPU at tiny shapes: plain, and with Triton interpreted.

They run as real subprocesses, the way a maintainer runs them; nothing here measures speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN_MODEL = Path(__file__).with_name("standin_train.py")
KERNELS = ["rms_norm (N, d)", "rotary (B, T, H, Dh)", "softcap CE (N, d)x(V, d)", "relu2 MLP (N, d)->4d->d"]


def _run_script(script: str, *args: str, interpret: bool = True) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )


def _json_output(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_kernel_bench_times_triton_and_eager_for_every_kernel_on_cpu() -> None:
    report = _json_output(
        _run_script(
            "kernels.py",
            "--device",
            "cpu",
            "--tokens",
            "32",
            "--warmup",
            "0",
            "--reps",
            "1",
            "--no-compile",
            "--json",
        )
    )

    rows = {(row["kernel"], row["impl"]): row for row in report["rows"]}
    assert sorted(rows) == sorted(
        (kernel, impl) for kernel in KERNELS for impl in ("triton", "eager", "compiled")
    )
    for kernel in KERNELS:
        assert rows[kernel, "triton"]["ms"] > 0
        assert rows[kernel, "triton"]["max_abs_diff"] < 1e-4
        assert rows[kernel, "eager"]["max_abs_diff"] == 0.0
        assert rows[kernel, "compiled"]["note"] == "skipped (--no-compile)"
    assert report["notes"] == [
        "Triton ran in its CPU interpreter: its times are a smoke test, not performance figures."
    ]


def test_throughput_bench_runs_the_model_with_kernels_off_and_on_from_the_same_start() -> None:
    report = _json_output(
        _run_script(
            "train_throughput.py",
            *("--model-file", str(STANDIN_MODEL), "--device", "cpu", "--small"),
            *("--tokens-per-step", "128", "--steps", "1", "--warmup", "1", "--json"),
        )
    )

    off, on = report["runs"]
    assert (off["use_triton_kernels"], on["use_triton_kernels"]) == (False, True)
    assert off["error"] is None and on["error"] is None
    assert report["accumulation"] == 1
    # Same weights, same tokens: the first loss (before any update) agrees across the two code paths.
    assert abs(on["first_loss"] - off["first_loss"]) < 1e-5
    assert report["ratio_on_over_off"] == on["tokens_per_s"] / off["tokens_per_s"]
    # 2 layers x (qkv 3d^2 + proj d^2 + up 4d^2 + down 4d^2) + head V*d; the embedding is a lookup.
    matmul_params = 2 * 12 * 64 * 64 + 256 * 64
    assert report["matmul_params"] == matmul_params
    assert (report["attention_layers"], report["attention_width"]) == (2, 64)
    assert report["flops_per_token"] == 6 * matmul_params + 12 * 2 * 64 * 64
    assert off["mfu"] is None and off["peak_memory_mib"] is None


def test_throughput_bench_measures_only_plain_torch_when_the_kernel_flag_is_missing(tmp_path: Path) -> None:
    source = (
        STANDIN_MODEL.read_text()
        .replace("USE_TRITON_KERNELS = False\n", "")
        .replace("shared.kernels if USE_TRITON_KERNELS else reference", "reference")
    )
    model_file = tmp_path / "train.py"
    model_file.write_text(source)

    report = _json_output(
        _run_script(
            "train_throughput.py",
            *("--model-file", str(model_file), "--device", "cpu", "--small", "--steps", "1", "--json"),
        )
    )

    assert [run["use_triton_kernels"] for run in report["runs"]] == [False]
    assert report["ratio_on_over_off"] is None
    assert report["notes"][0] == (
        f"{model_file} has no module-level USE_TRITON_KERNELS flag yet, so only the plain-torch run was "
        "measured; define USE_TRITON_KERNELS and read it when the model is built or run"
    )


def test_throughput_bench_says_which_hook_the_model_file_lacks(tmp_path: Path) -> None:
    model_file = tmp_path / "train.py"
    model_file.write_text("def train(ctx):\n    return None\n")

    result = _run_script("train_throughput.py", "--model-file", str(model_file), "--device", "cpu", "--small")

    assert result.returncode == 2
    assert result.stderr == (
        f"error: {model_file} does not define build_model(ctx): this benchmark needs "
        "build_model(ctx) -> nn.Module with model.loss(idx, targets) -> mean loss\n"
    )


def test_kernel_bench_on_a_plain_cpu_compares_torch_compile_with_eager_and_skips_triton() -> None:
    # `python bench/kernels.py --device cpu`, with fewer repetitions.
    report = _json_output(
        _run_script("kernels.py", "--device", "cpu", "--warmup", "0", "--reps", "1", "--json", interpret=False)
    )

    rows = {(row["kernel"], row["impl"]): row for row in report["rows"]}
    for kernel in KERNELS:
        assert rows[kernel, "triton"]["note"] == "skipped"
        assert rows[kernel, "eager"]["ms"] > 0 and rows[kernel, "compiled"]["ms"] > 0
        assert rows[kernel, "compiled"]["max_abs_diff"] < 1e-4


def test_throughput_bench_trains_the_baseline_with_its_own_optimizers_and_counts_its_flops() -> None:
    # `python bench/train_throughput.py --device cpu --small --steps 2` on baseline/train.py.
    report = _json_output(
        _run_script("train_throughput.py", "--device", "cpu", "--small", "--steps", "2", "--json", interpret=False)
    )

    off, on = report["runs"]
    assert (off["use_triton_kernels"], on["use_triton_kernels"]) == (False, True)
    assert off["error"] is None and on["error"] is None
    assert off["optimizer"] == on["optimizer"] == "build_optimizers: AdamW, Muon"
    assert on["first_loss"] == off["first_loss"]  # same weights, same tokens, same (plain) code on a CPU
    assert report["accumulation"] == 2  # 256 tokens per step in micro-batches of 2 x 64
    # The baseline's cpu shape: 4 blocks of d=128 (qkv 3d^2, out d^2, up 4d^2, down 4d^2) + head V*d.
    d, layers, vocab, seq = 128, 4, 256, 64
    assert report["matmul_params"] == layers * 12 * d * d + vocab * d
    assert (report["attention_layers"], report["attention_width"]) == (layers, d)
    assert report["flops_per_token"] == 6 * report["matmul_params"] + 12 * layers * d * seq
    assert "both runs here executed the same plain-torch code" in report["notes"][0]
