"""The ReLU² MLP, y = relu(x W_up^T)^2 W_down^T, with the activation fused into GEMM epilogues.

Why it pays at the baseline's shapes (d=512, hidden 2048, ~2^18 tokens per micro-batch): the MLP's
(tokens, 2048) activations are its largest tensors. Eager torch writes the pre-activation, reads it
for relu, writes relu's output, reads it to square, writes the square, and keeps three of them alive
for the backward. Here:

* forward: one Triton GEMM computes x W_up^T and, in its epilogue, writes the pre-activation h
  (the only tensor saved for the backward) and relu(h)^2 (fed to cuBLAS for the down-projection,
  then freed);
* backward: one Triton GEMM computes dy W_down and, in its epilogue, reads h and writes both
  dh = (dy W_down) * 2 relu(h) and the recomputed relu(h)^2 that W_down's gradient needs. The three
  remaining GEMMs (dx, dW_up, dW_down) are plain cuBLAS calls.

torch.compile can fuse the elementwise ops too, but not into the GEMM, so it still round-trips h
through memory once more in each direction.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from shared.kernels.dispatch import KERNELS_INTERPRETED, matmul_dtype


def _gemm_configs() -> list[triton.Config]:
    if KERNELS_INTERPRETED:
        # Small tiles keep ragged edges and several K steps in play at test sizes.
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 2})]
    return [
        triton.Config(
            {"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": 8}, num_stages=stages, num_warps=warps
        )
        for m, n, k, stages, warps in (
            (128, 256, 64, 3, 8),
            (256, 128, 64, 3, 8),
            (128, 128, 64, 4, 4),
            (128, 128, 32, 4, 4),
            (64, 256, 32, 4, 4),
            (128, 64, 32, 4, 4),
            (64, 128, 64, 4, 4),
        )
    ]


@triton.autotune(configs=_gemm_configs(), key=["M", "N", "K", "BACKWARD"])
@triton.jit
def _gemm_relu2_kernel(
    a_ptr,
    b_ptr,
    pre_ptr,
    out_ptr,
    act_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    BACKWARD: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    # C = A @ B, then
    #   forward:  out = C (the pre-activation h),   act = relu(C)^2
    #   backward: out = C * 2 relu(pre) (= dh),     act = relu(pre)^2, with pre the saved h.
    # out, act and pre are contiguous (M, N).
    program = tl.program_id(0)
    programs_m = tl.cdiv(M, BLOCK_M)
    programs_n = tl.cdiv(N, BLOCK_N)
    # Grouped order: consecutive programs share B tiles while they are still in L2.
    programs_per_group = GROUP_M * programs_n
    group = program // programs_per_group
    first_m = group * GROUP_M
    group_rows = tl.minimum(programs_m - first_m, GROUP_M)
    tile_m = first_m + (program % programs_per_group) % group_rows
    tile_n = (program % programs_per_group) // group_rows

    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + tl.cast(rows, tl.int64)[:, None] * stride_am + ks[None, :] * stride_ak
    b_ptrs = b_ptr + ks[:, None] * stride_bk + cols[None, :] * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(rows[:, None] < M) & (ks[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(ks[:, None] < k_left) & (cols[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    offsets = tl.cast(rows, tl.int64)[:, None] * N + cols[None, :]
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    out_dtype = out_ptr.dtype.element_ty
    if BACKWARD:
        relu = tl.maximum(tl.load(pre_ptr + offsets, mask=mask, other=0.0).to(tl.float32), 0.0)
        tl.store(out_ptr + offsets, (acc * 2.0 * relu).to(out_dtype), mask=mask)
    else:
        pre = acc.to(out_dtype)
        # From the stored (rounded) h, so the backward's recomputed relu(h)^2 is the very same tensor.
        relu = tl.maximum(pre.to(tl.float32), 0.0)
        tl.store(out_ptr + offsets, pre, mask=mask)
    tl.store(act_ptr + offsets, (relu * relu).to(out_dtype), mask=mask)


def _gemm_relu2(
    a: torch.Tensor, b: torch.Tensor, *, pre: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A @ B with the epilogue above): (h, relu(h)^2) without `pre`, (dh, relu(pre)^2) with it."""
    (m, k), n = a.shape, b.shape[1]
    out = a.new_empty((m, n))
    act = a.new_empty((m, n))
    if m == 0:
        return out, act

    def grid(meta: dict[str, Any]) -> tuple[int]:
        return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)

    _gemm_relu2_kernel[grid](
        a,
        b,
        pre if pre is not None else out,  # unused in the forward
        out,
        act,
        m,
        n,
        k,
        a.stride(0),
        a.stride(1),
        b.stride(0),
        b.stride(1),
        BACKWARD=pre is not None,
        # Match torch's fp32 matmul (no TF32 unless asked); bf16/fp16 inputs ignore this.
        INPUT_PRECISION="ieee" if a.dtype == torch.float32 else "tf32",
    )
    return out, act


class ReLU2MLPFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
        x_rows = x.reshape(-1, x.shape[-1]).contiguous()
        pre, act = _gemm_relu2(x_rows, w_up.t(), pre=None)  # (M, hidden) each
        y = act @ w_down.t()  # (M, d_out)
        ctx.save_for_backward(x_rows, w_up, w_down, pre)
        return y.view(*x.shape[:-1], w_down.shape[0])

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_rows, w_up, w_down, pre = ctx.saved_tensors
        grad_y_rows = grad_y.reshape(-1, grad_y.shape[-1]).contiguous()
        grad_pre, act = _gemm_relu2(grad_y_rows, w_down, pre=pre)  # (M, hidden) each
        grad_x = (
            (grad_pre @ w_up).view(*grad_y.shape[:-1], w_up.shape[1]) if ctx.needs_input_grad[0] else None
        )
        grad_w_up = grad_pre.t() @ x_rows if ctx.needs_input_grad[1] else None
        grad_w_down = grad_y_rows.t() @ act if ctx.needs_input_grad[2] else None
        return grad_x, grad_w_up, grad_w_down


def relu2_mlp_triton(x: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """The Triton path of `shared.kernels.relu2_mlp` (same contract as `reference.relu2_mlp`)."""
    d_model = x.shape[-1]
    if w_up.dim() != 2 or w_up.shape[1] != d_model:
        raise ValueError(f"w_up must be (hidden, {d_model}), got {tuple(w_up.shape)}")
    if w_down.dim() != 2 or w_down.shape[1] != w_up.shape[0]:
        raise ValueError(f"w_down must be (d_out, {w_up.shape[0]}), got {tuple(w_down.shape)}")
    dtype = matmul_dtype(x)
    return ReLU2MLPFunction.apply(x.to(dtype), w_up.to(dtype), w_down.to(dtype))
