"""baseline/train.py with its Triton kernels on (in the interpreter) trains the same model as with them off.

This is the GPU code path of the baseline's model, run on a CPU at a tiny size: every norm, rotary,
MLP and loss call goes through `shared.kernels`' Triton kernels, and the loss, the logits and every
parameter's gradient must equal those of the plain-torch references.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch

import shared.kernels

BASELINE = Path(__file__).resolve().parents[2] / "baseline" / "train.py"
TRITON_ENTRY_POINTS = ["rms_norm_triton", "apply_rotary_triton", "relu2_mlp_triton", "softcapped_cross_entropy_triton"]


def load_baseline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_train_under_test", BASELINE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def count_calls(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> dict[str, int]:
    calls = dict.fromkeys(names, 0)

    def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    for name in names:
        monkeypatch.setattr(shared.kernels, name, counted(name, getattr(shared.kernels, name)))
    return calls


def test_baseline_model_with_triton_kernels_matches_its_plain_torch_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = load_baseline()
    monkeypatch.setattr(baseline, "CPU_DEPTH", 2)
    monkeypatch.setattr(baseline, "CPU_D_MODEL", 32)
    monkeypatch.setattr(baseline, "CPU_HEAD_DIM", 16)  # 2 heads
    ctx = SimpleNamespace(hardware_class="cpu", vocab_size=67, seq_len=13, device="cpu")
    monkeypatch.setattr(baseline, "USE_TRITON_KERNELS", False)
    plain = baseline.build_model(ctx)
    monkeypatch.setattr(baseline, "USE_TRITON_KERNELS", True)
    fused = baseline.build_model(ctx)
    # Random weights everywhere: the zero-initialised projections and head would hide gradients.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in plain.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * p.size(-1) ** -0.5)
    fused.load_state_dict(plain.state_dict())
    idx = torch.randint(ctx.vocab_size, (2, ctx.seq_len + 1), generator=generator)
    x, y = idx[:, :-1], idx[:, 1:]
    calls = count_calls(monkeypatch, TRITON_ENTRY_POINTS)

    fused_loss = fused.loss(x, y)
    fused_loss.backward()
    plain_loss = plain.loss(x, y)
    plain_loss.backward()

    assert all(calls[name] > 0 for name in TRITON_ENTRY_POINTS), calls
    torch.testing.assert_close(fused_loss, plain_loss, rtol=1e-5, atol=1e-5)
    for (name, p_fused), p_plain in zip(fused.named_parameters(), plain.parameters(), strict=True):
        assert p_fused.grad is not None and p_plain.grad is not None, name
        try:
            torch.testing.assert_close(p_fused.grad, p_plain.grad, rtol=1e-4, atol=1e-5)
        except AssertionError as exc:
            raise AssertionError(f"grad of {name}: {exc}") from None
    with torch.no_grad():
        torch.testing.assert_close(fused(x), plain(x), rtol=1e-5, atol=1e-5)
