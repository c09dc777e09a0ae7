from __future__ import annotations

import pytest
import torch

from shared.kernels import reference
from shared.kernels.relu2_mlp import relu2_mlp_triton
from tests.kernels.compare import assert_matches_reference


def _weights(d_model: int, hidden: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    w_up = torch.randn(hidden, d_model, generator=generator) / d_model**0.5
    w_down = torch.randn(d_model, hidden, generator=generator) / hidden**0.5
    return w_up, w_down


@pytest.mark.parametrize(
    ("x_shape", "hidden"),
    [((1, 16), 64), ((7, 40), 160), ((33, 40), 100), ((2, 5, 16), 64)],
    ids=str,
)
def test_fused_relu2_mlp_matches_reference_forward_and_backward(
    x_shape: tuple[int, ...], hidden: int
) -> None:
    x = torch.randn(x_shape, generator=torch.Generator().manual_seed(0))
    w_up, w_down = _weights(x_shape[-1], hidden, seed=1)

    assert_matches_reference(relu2_mlp_triton, reference.relu2_mlp, [x, w_up, w_down], rtol=1e-4)


def _hidden_sized_tensors_saved_for_backward(
    fn: object, x: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor
) -> int:
    shapes: list[tuple[int, ...]] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(x.requires_grad_(), w_up.requires_grad_(), w_down.requires_grad_())  # type: ignore[operator]
    return shapes.count((x.shape[0], w_up.shape[0]))


def test_fused_relu2_mlp_keeps_only_the_pre_activation_for_backward() -> None:
    x = torch.randn(33, 40, generator=torch.Generator().manual_seed(2))
    w_up, w_down = _weights(40, 160, seed=3)

    fused = _hidden_sized_tensors_saved_for_backward(relu2_mlp_triton, x, w_up, w_down)
    eager = _hidden_sized_tensors_saved_for_backward(
        reference.relu2_mlp, x.detach(), w_up.detach(), w_down.detach()
    )

    assert fused == 1
    assert eager == 3


def test_fused_relu2_mlp_rejects_mismatched_weights() -> None:
    w_up, _ = _weights(16, 64, seed=4)

    with pytest.raises(ValueError, match=r"w_down must be \(d_out, 64\), got \(16, 63\)"):
        relu2_mlp_triton(torch.randn(3, 16), w_up, torch.randn(16, 63))
