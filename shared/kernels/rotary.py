"""Rotary position embedding, forward and backward in Triton.

The rotation is orthogonal, so its backward is the same kernel rotating by -theta (sin negated).
Layout: x is (B, T, H, D), the layout q and k have right after the QKV projection, before any
transpose; the head dimension is split in halves (x1 = x[..., :D/2], x2 = x[..., D/2:]), as in
autoresearch and modded-nanogpt, rather than interleaved.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

# Elements one program rotates; with D=128 that is 64 rows of (B*T*H) per program.
_ELEMENTS_PER_PROGRAM = 4096


@triton.jit
def _rotary_kernel(
    x_ptr,
    cos_ptr,
    sin_ptr,
    y_ptr,
    n_rows,
    seq_len,
    n_heads,
    half,
    INVERSE: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)  # a row is one (b, t, h)
    cols = tl.arange(0, BLOCK_HALF)
    mask = (rows < n_rows)[:, None] & (cols < half)[None, :]
    position = (rows // n_heads) % seq_len
    table_offsets = position[:, None] * half + cols[None, :]
    cos = tl.load(cos_ptr + table_offsets, mask=mask, other=0.0).to(tl.float32)
    sin = tl.load(sin_ptr + table_offsets, mask=mask, other=0.0).to(tl.float32)
    if INVERSE:
        sin = -sin
    first = tl.cast(rows, tl.int64)[:, None] * (2 * half) + cols[None, :]
    x1 = tl.load(x_ptr + first, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_ptr + first + half, mask=mask, other=0.0).to(tl.float32)
    out_dtype = y_ptr.dtype.element_ty
    tl.store(y_ptr + first, (x1 * cos - x2 * sin).to(out_dtype), mask=mask)
    tl.store(y_ptr + first + half, (x1 * sin + x2 * cos).to(out_dtype), mask=mask)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, inverse: bool) -> torch.Tensor:
    batch, seq_len, n_heads, head_dim = x.shape
    half = head_dim // 2
    x = x.contiguous()
    y = torch.empty_like(x)
    n_rows = batch * seq_len * n_heads
    block_half = triton.next_power_of_2(half)
    block_rows = max(1, _ELEMENTS_PER_PROGRAM // block_half)
    if n_rows > 0:
        _rotary_kernel[(triton.cdiv(n_rows, block_rows),)](
            x,
            cos,
            sin,
            y,
            n_rows,
            seq_len,
            n_heads,
            half,
            INVERSE=inverse,
            BLOCK_ROWS=block_rows,
            BLOCK_HALF=block_half,
            num_warps=4,
        )
    return y


class RotaryFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin, inverse=False)

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        cos, sin = ctx.saved_tensors
        return _rotate(grad_y, cos, sin, inverse=True), None, None


def apply_rotary_triton(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The Triton path of `shared.kernels.apply_rotary` (same contract as `reference.apply_rotary`).

    cos and sin are position tables, not parameters: they get no gradient, so they must not ask for one.
    """
    if x.dim() != 4 or x.shape[-1] % 2:
        raise ValueError(f"x must be (B, T, H, D) with D even, got {tuple(x.shape)}")
    _, seq_len, _, head_dim = x.shape
    half = head_dim // 2
    for name, table in (("cos", cos), ("sin", sin)):
        if table.numel() != seq_len * half:
            raise ValueError(
                f"{name} must hold T*D/2 = {seq_len * half} values, got shape {tuple(table.shape)}"
            )
        if table.requires_grad:
            raise ValueError(f"{name} requires grad, but the rotary kernel treats it as a constant table")
    cos = cos.reshape(seq_len, half).contiguous()
    sin = sin.reshape(seq_len, half).contiguous()
    return RotaryFunction.apply(x, cos, sin)
