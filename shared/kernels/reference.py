"""Plain-torch references for every kernel, with the same names and signatures as `shared.kernels`.

They define what the kernels must compute (the tests hold the Triton versions to them), and they are
what runs on a CPU. A model can switch all its kernels off by importing its functions from here
instead of from `shared.kernels`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm(
    x: torch.Tensor, weight: torch.Tensor | None = None, *, eps: float | None = None
) -> torch.Tensor:
    """RMS-normalise the last dimension, in fp32, and return the input's dtype.

    `eps=None` means `torch.finfo(x.dtype).eps`, as in `F.rms_norm`.
    """
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.square().mean(dim=-1, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.float()
    return y.to(x.dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first half, second half) pair of the head dimension by the position's angle.

    x: (B, T, H, D); cos, sin: (T, D/2), or anything of T*D/2 elements such as (1, T, 1, D/2).
    y1 = x1 cos - x2 sin, y2 = x1 sin + x2 cos, computed in fp32, returned in x's dtype.
    """
    _, seq_len, _, head_dim = x.shape
    half = head_dim // 2
    cos32 = cos.reshape(1, seq_len, 1, half).float()
    sin32 = sin.reshape(1, seq_len, 1, half).float()
    x1, x2 = x.float().split(half, dim=-1)
    y = torch.cat((x1 * cos32 - x2 * sin32, x1 * sin32 + x2 * cos32), dim=-1)
    return y.to(x.dtype)


def cap_logits(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(logits / cap): bounds logits to (-cap, cap), near-identity for small ones."""
    return cap * torch.tanh(logits / cap)


def softcapped_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    softcap: float | None,
    ignore_index: int = -1,
) -> torch.Tensor:
    """Mean cross-entropy of softcapped logits `hidden @ weight.T` over the non-ignored targets.

    hidden: (..., d); weight: (V, d); targets: (...) int64. The logits are computed in the matmul's
    dtype (autocast's, if on), then softcapped and reduced in fp32; the loss is fp32.
    `softcap=None` skips the cap.
    """
    logits = F.linear(hidden.reshape(-1, hidden.shape[-1]), weight).float()
    if softcap is not None:
        logits = cap_logits(logits, softcap)
    return F.cross_entropy(logits, targets.reshape(-1), ignore_index=ignore_index, reduction="mean")


def relu2_mlp(x: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """relu(x @ w_up.T)^2 @ w_down.T, the bias-free MLP of modded-nanogpt-style models.

    x: (..., d); w_up: (hidden, d); w_down: (d_out, hidden).
    """
    return F.linear(F.relu(F.linear(x, w_up)).square(), w_down)
