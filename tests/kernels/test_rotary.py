from __future__ import annotations

import pytest
import torch

from shared.kernels import reference
from shared.kernels.rotary import apply_rotary_triton
from tests.kernels.compare import assert_matches_reference


def _tables(seq_len: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    half = head_dim // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(half, dtype=torch.float32) / half))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)  # (T, D/2)
    return angles.cos(), angles.sin()


@pytest.mark.parametrize("shape", [(1, 1, 1, 16), (2, 7, 3, 40), (1, 33, 2, 16)], ids=str)
def test_rotary_matches_reference_forward_and_backward(shape: tuple[int, int, int, int]) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    cos, sin = _tables(shape[1], shape[3])

    assert_matches_reference(
        lambda t: apply_rotary_triton(t, cos, sin), lambda t: reference.apply_rotary(t, cos, sin), [x]
    )


def test_rotary_accepts_tables_in_broadcast_layout() -> None:
    x = torch.randn(2, 7, 3, 16, generator=torch.Generator().manual_seed(1))
    cos, sin = _tables(7, 16)

    got = apply_rotary_triton(x, cos.view(1, 7, 1, 8), sin.view(1, 7, 1, 8))

    torch.testing.assert_close(got, reference.apply_rotary(x, cos, sin))


def test_rotary_by_negated_sin_equals_autoresearch_convention() -> None:
    x = torch.randn(1, 5, 2, 16, generator=torch.Generator().manual_seed(2))
    cos, sin = _tables(5, 16)
    x1, x2 = x[..., :8], x[..., 8:]
    c, s = cos.view(1, 5, 1, 8), sin.view(1, 5, 1, 8)
    autoresearch = torch.cat((x1 * c + x2 * s, x1 * (-s) + x2 * c), dim=-1)

    torch.testing.assert_close(apply_rotary_triton(x, cos, -sin), autoresearch)


def test_rotary_refuses_tables_that_require_grad() -> None:
    cos, sin = _tables(4, 16)

    with pytest.raises(
        ValueError, match="sin requires grad, but the rotary kernel treats it as a constant table"
    ):
        apply_rotary_triton(torch.randn(1, 4, 1, 16), cos, sin.requires_grad_())


def test_rotary_refuses_tables_of_the_wrong_length() -> None:
    cos, sin = _tables(5, 16)

    with pytest.raises(ValueError, match=r"cos must hold T\*D/2 = 32 values, got shape \(5, 8\)"):
        apply_rotary_triton(torch.randn(1, 4, 1, 16), cos, sin)
