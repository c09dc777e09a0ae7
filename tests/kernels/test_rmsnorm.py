from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.kernels import reference
from shared.kernels.rmsnorm import rms_norm_triton
from tests.kernels.compare import assert_matches_reference

SHAPES = [(1, 16), (7, 40), (33, 40), (2, 3, 16)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rms_norm_without_weight_matches_reference_forward_and_backward(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))

    assert_matches_reference(rms_norm_triton, reference.rms_norm, [x])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rms_norm_with_weight_matches_reference_forward_and_backward(shape: tuple[int, ...]) -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=generator)
    weight = 1.0 + 0.1 * torch.randn(shape[-1], generator=generator)

    assert_matches_reference(rms_norm_triton, reference.rms_norm, [x, weight])


def test_rms_norm_honours_an_explicit_eps() -> None:
    x = 1e-3 * torch.randn(5, 16, generator=torch.Generator().manual_seed(2))

    assert_matches_reference(
        lambda t: rms_norm_triton(t, eps=1e-4), lambda t: reference.rms_norm(t, eps=1e-4), [x]
    )


def test_reference_rms_norm_equals_torch_rms_norm_including_default_eps() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(6, 40, generator=generator)
    weight = torch.randn(40, generator=generator)

    torch.testing.assert_close(reference.rms_norm(x), F.rms_norm(x, (40,)))
    torch.testing.assert_close(reference.rms_norm(x, weight), F.rms_norm(x, (40,), weight))


def test_rms_norm_rejects_a_weight_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match=r"weight must have shape \(16,\), got \(17,\)"):
        rms_norm_triton(torch.randn(2, 16), torch.ones(17))
