from __future__ import annotations

import pytest
import torch

import shared.kernels as kernels
from shared.kernels.dispatch import matmul_dtype


def test_cpu_tensors_take_the_triton_interpreter_while_it_is_requested() -> None:
    assert kernels.use_triton(torch.zeros(2)) is True


def test_cpu_tensors_take_the_torch_reference_once_the_interpreter_is_no_longer_requested(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRITON_INTERPRET")
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))

    assert kernels.use_triton(x) is False
    assert torch.equal(kernels.rms_norm(x), kernels.reference.rms_norm(x))


def test_dispatching_functions_match_their_references_under_the_interpreter() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 2, 16, generator=generator)
    angles = torch.randn(3, 8, generator=generator)
    hidden, weight = torch.randn(6, 16, generator=generator), torch.randn(11, 16, generator=generator)
    targets = torch.tensor([0, 3, -1, 10, 5, 2])
    w_up, w_down = torch.randn(64, 16, generator=generator) / 4, torch.randn(16, 64, generator=generator) / 8

    torch.testing.assert_close(kernels.rms_norm(x), kernels.reference.rms_norm(x))
    torch.testing.assert_close(
        kernels.apply_rotary(x, angles.cos(), angles.sin()),
        kernels.reference.apply_rotary(x, angles.cos(), angles.sin()),
    )
    torch.testing.assert_close(
        kernels.softcapped_cross_entropy(hidden, weight, targets, softcap=15.0),
        kernels.reference.softcapped_cross_entropy(hidden, weight, targets, softcap=15.0),
    )
    torch.testing.assert_close(
        kernels.relu2_mlp(hidden, w_up, w_down),
        kernels.reference.relu2_mlp(hidden, w_up, w_down),
        rtol=1e-4,
        atol=1e-5,
    )


def test_matmul_dtype_follows_autocast_like_a_linear_layer() -> None:
    x = torch.zeros(2, 2)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert matmul_dtype(x) == torch.bfloat16
    assert matmul_dtype(x) == torch.float32
