"""RMSNorm over the last dimension, forward and backward in Triton, with an optional weight.

Both kernels work on tiles of whole rows (BLOCK_ROWS x the row length), so that short rows such as
QK-norm's 128-wide heads still give each program thousands of elements.
Forward: one tile per program; it keeps 1/rms per row (fp32) for the backward.
Backward: each program walks a contiguous run of rows, so the weight gradient is reduced in two
stages (per-program partial sums in fp32, then one torch sum) instead of with atomics, which keeps
it deterministic.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from shared.kernels.dispatch import KERNELS_INTERPRETED

# A row lives in one block of registers; beyond this the kernel would spill, and no model here needs it.
MAX_FEATURES = 65536
# Elements per tile: a GPU wants thousands per program; the interpreter gets small tiles so that
# test-sized inputs still span several tiles and several programs, ragged ones included.
_ELEMENTS_PER_TILE = 512 if KERNELS_INTERPRETED else 4096


@triton.jit
def _rms_norm_forward_kernel(
    x_ptr,
    weight_ptr,
    y_ptr,
    rstd_ptr,
    n_rows,
    n_cols,
    eps,
    HAS_WEIGHT: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    eps = tl.cast(eps, tl.float32)  # fp64 when launched from a torch.compile graph: keep the math fp32
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_COLS)
    row_mask = rows < n_rows
    mask = row_mask[:, None] & (cols < n_cols)[None, :]
    offsets = tl.cast(rows, tl.int64)[:, None] * n_cols + cols[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / n_cols + eps)  # (BLOCK_ROWS,)
    y = x * rstd[:, None]
    if HAS_WEIGHT:
        y = y * tl.load(weight_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)[None, :]
    tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(rstd_ptr + rows, rstd, mask=row_mask)


@triton.jit
def _rms_norm_backward_kernel(
    grad_y_ptr,
    x_ptr,
    weight_ptr,
    rstd_ptr,
    grad_x_ptr,
    grad_weight_partial_ptr,
    n_rows,
    n_cols,
    rows_per_program,
    HAS_WEIGHT: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    # With xhat = x * rstd and g = dy * w:  dx = rstd * (g - xhat * mean(g * xhat)),  dw = sum_rows dy * xhat.
    program = tl.program_id(0)
    cols = tl.arange(0, BLOCK_COLS)
    col_mask = cols < n_cols
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    grad_weight_acc = tl.zeros((BLOCK_COLS,), dtype=tl.float32)
    first_row = program * rows_per_program
    last_row = tl.minimum(first_row + rows_per_program, n_rows)
    for tile_start in range(first_row, last_row, BLOCK_ROWS):
        rows = tile_start + tl.arange(0, BLOCK_ROWS)
        row_mask = rows < last_row
        mask = row_mask[:, None] & col_mask[None, :]
        offsets = tl.cast(rows, tl.int64)[:, None] * n_cols + cols[None, :]
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        grad_y = tl.load(grad_y_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(rstd_ptr + rows, mask=row_mask, other=0.0)[:, None]
        x_hat = x * rstd
        if HAS_WEIGHT:
            grad_weight_acc += tl.sum(grad_y * x_hat, axis=0)
            grad_y = grad_y * weight
        grad_x = rstd * (grad_y - x_hat * (tl.sum(grad_y * x_hat, axis=1) / n_cols)[:, None])
        tl.store(grad_x_ptr + offsets, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)
    if HAS_WEIGHT:
        tl.store(grad_weight_partial_ptr + program * n_cols + cols, grad_weight_acc, mask=col_mask)


def _tiling(n_cols: int) -> tuple[int, int, int]:
    """(BLOCK_ROWS, BLOCK_COLS, num_warps) for rows of n_cols features."""
    block_cols = triton.next_power_of_2(n_cols)
    block_rows = max(1, _ELEMENTS_PER_TILE // block_cols)
    return block_rows, block_cols, min(max(block_rows * block_cols // 512, 1), 16)


def _backward_program_count(x: torch.Tensor, n_tiles: int) -> int:
    if KERNELS_INTERPRETED or not x.is_cuda:
        return min(n_tiles, 4)  # few programs: runs of several ragged tiles still get exercised
    # Enough programs to fill the GPU; more would only add partial weight-gradient rows to sum.
    return min(n_tiles, 4 * torch.cuda.get_device_properties(x.device).multi_processor_count)


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
        n_cols = x.shape[-1]
        x_rows = x.reshape(-1, n_cols).contiguous()
        weight = weight.contiguous() if weight is not None else None
        n_rows = x_rows.shape[0]
        block_rows, block_cols, num_warps = _tiling(n_cols)
        y = torch.empty_like(x_rows)
        rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
        if n_rows > 0:
            _rms_norm_forward_kernel[(triton.cdiv(n_rows, block_rows),)](
                x_rows,
                weight if weight is not None else x_rows,  # unused when HAS_WEIGHT is false
                y,
                rstd,
                n_rows,
                n_cols,
                eps,
                HAS_WEIGHT=weight is not None,
                BLOCK_ROWS=block_rows,
                BLOCK_COLS=block_cols,
                num_warps=num_warps,
            )
        ctx.save_for_backward(x_rows, weight, rstd)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_rows, weight, rstd = ctx.saved_tensors
        n_rows, n_cols = x_rows.shape
        grad_y_rows = grad_y.reshape(n_rows, n_cols).contiguous()
        block_rows, block_cols, num_warps = _tiling(n_cols)
        n_tiles = triton.cdiv(n_rows, block_rows)
        programs = max(_backward_program_count(x_rows, n_tiles), 1)
        rows_per_program = triton.cdiv(n_tiles, programs) * block_rows
        grad_x = torch.empty_like(x_rows)
        has_weight = weight is not None
        grad_weight_partial = torch.zeros(
            (programs if has_weight else 1, n_cols), dtype=torch.float32, device=x_rows.device
        )
        if n_rows > 0:
            _rms_norm_backward_kernel[(programs,)](
                grad_y_rows,
                x_rows,
                weight if has_weight else x_rows,
                rstd,
                grad_x,
                grad_weight_partial,
                n_rows,
                n_cols,
                rows_per_program,
                HAS_WEIGHT=has_weight,
                BLOCK_ROWS=block_rows,
                BLOCK_COLS=block_cols,
                num_warps=num_warps,
            )
        grad_weight = None
        if has_weight and ctx.needs_input_grad[1]:
            grad_weight = grad_weight_partial.sum(dim=0).to(weight.dtype)
        return grad_x.view(grad_y.shape), grad_weight, None


def rms_norm_triton(
    x: torch.Tensor, weight: torch.Tensor | None = None, *, eps: float | None = None
) -> torch.Tensor:
    """The Triton path of `shared.kernels.rms_norm` (same contract as `reference.rms_norm`)."""
    n_cols = x.shape[-1]
    if n_cols > MAX_FEATURES:
        raise ValueError(f"rms_norm_triton supports at most {MAX_FEATURES} features, got {n_cols}")
    if weight is not None and weight.shape != (n_cols,):
        raise ValueError(f"weight must have shape ({n_cols},), got {tuple(weight.shape)}")
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    return RMSNormFunction.apply(x, weight, eps)
