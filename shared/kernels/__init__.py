"""Triton-fused kernels for the baseline GPT, each with a plain-torch reference.

Every function here has the signature of its namesake in `shared.kernels.reference`. It runs the
Triton kernel when `use_triton(...)` says so (CUDA inputs; or Triton's CPU interpreter in tests),
and the reference otherwise. The `*_triton` functions force the Triton path and take extra tuning
arguments. Imports only torch, triton and numpy: this runs on a bare GPU box. See README.md.
"""

from __future__ import annotations

import torch

from shared.kernels import reference
from shared.kernels.dispatch import KERNELS_INTERPRETED, TRITON_AVAILABLE, use_triton

if TRITON_AVAILABLE:
    from shared.kernels.cross_entropy import softcapped_cross_entropy_triton
    from shared.kernels.relu2_mlp import relu2_mlp_triton
    from shared.kernels.rmsnorm import rms_norm_triton
    from shared.kernels.rotary import apply_rotary_triton

__all__ = [
    "KERNELS_INTERPRETED",
    "TRITON_AVAILABLE",
    "apply_rotary",
    "reference",
    "relu2_mlp",
    "rms_norm",
    "softcapped_cross_entropy",
    "use_triton",
]
if TRITON_AVAILABLE:
    __all__ += [
        "apply_rotary_triton",
        "relu2_mlp_triton",
        "rms_norm_triton",
        "softcapped_cross_entropy_triton",
    ]


def rms_norm(
    x: torch.Tensor, weight: torch.Tensor | None = None, *, eps: float | None = None
) -> torch.Tensor:
    """RMSNorm over the last dimension; see `reference.rms_norm`."""
    if use_triton(x):
        return rms_norm_triton(x, weight, eps=eps)
    return reference.rms_norm(x, weight, eps=eps)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of (B, T, H, D) by (T, D/2) tables; see `reference.apply_rotary`."""
    if use_triton(x):
        return apply_rotary_triton(x, cos, sin)
    return reference.apply_rotary(x, cos, sin)


def softcapped_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    softcap: float | None,
    ignore_index: int = -1,
) -> torch.Tensor:
    """Mean cross-entropy of softcap(hidden @ weight.T); see `reference.softcapped_cross_entropy`."""
    if use_triton(hidden, weight):
        return softcapped_cross_entropy_triton(
            hidden, weight, targets, softcap=softcap, ignore_index=ignore_index
        )
    return reference.softcapped_cross_entropy(
        hidden, weight, targets, softcap=softcap, ignore_index=ignore_index
    )


def relu2_mlp(x: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """relu(x @ w_up.T)^2 @ w_down.T; see `reference.relu2_mlp`."""
    if use_triton(x, w_up, w_down):
        return relu2_mlp_triton(x, w_up, w_down)
    return reference.relu2_mlp(x, w_up, w_down)
