"""Softcapped cross-entropy from hidden states, without materialising the whole batch's logits.

The split: the two GEMMs per chunk stay in torch (cuBLAS is as fast as GEMMs get, and a Triton GEMM
would only add tuning surface), and one Triton kernel per chunk does everything elementwise or
row-reductive on the (chunk, V) logits in a single pass over them:

* forward: softcap, online logsumexp in fp32, the target's logit, and the row's loss. Only the
  per-row logsumexp (fp32, N values) is kept for the backward.
* backward: the logits are recomputed by the same GEMM, and the kernel overwrites them in place with
  d loss / d logits = (softmax - onehot) * (1 - tanh^2) * grad / n_valid. Two GEMMs then give the
  chunk's grad_hidden rows and add its share of grad_weight (accumulated in fp32).

So peak extra memory is one (chunk, V) buffer in the input dtype, plus a (V, d) fp32 accumulator,
instead of (N, V) fp32 logits and their gradient. The price is one extra GEMM in the backward.

tanh is written with exp (Triton's interpreter has no libdevice), in a form that cannot overflow.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from shared.kernels.dispatch import matmul_dtype

# Rows per chunk default to this many logits per chunk: 64 Mi elements (128 MiB in bf16), i.e.
# 8192 rows at V=8192 -- large enough that each GEMM runs at full speed.
_CHUNK_ELEMENTS = 1 << 26
_MAX_VOCAB_BLOCK = 4096


@triton.jit
def _tanh(x):
    # tanh(|x|) = (1 - e) / (1 + e) with e = exp(-2|x|) in (0, 1]: no overflow for any x.
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def _softcapped_lse_forward_kernel(
    logits_ptr,
    targets_ptr,
    loss_ptr,
    lse_ptr,
    n_cols,
    softcap,
    ignore_index,
    HAS_SOFTCAP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    row_ptr = logits_ptr + tl.cast(row, tl.int64) * n_cols
    # A float argument is fp32 from a plain launch but fp64 when torch.compile launches the kernel
    # from its graph, which would widen the loop-carried values below: fix its type here.
    softcap = tl.cast(softcap, tl.float32)
    running_max = tl.full((), float("-inf"), tl.float32)
    running_sum = tl.full((), 0.0, tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        z = tl.load(row_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_SOFTCAP:
            z = softcap * _tanh(z / softcap)
        z = tl.where(mask, z, float("-inf"))
        # Every block holds at least one real column, so new_max is finite and no inf - inf occurs.
        new_max = tl.maximum(running_max, tl.max(z, axis=0))
        running_sum = running_sum * tl.exp(running_max - new_max) + tl.sum(tl.exp(z - new_max), axis=0)
        running_max = new_max
    lse = running_max + tl.log(running_sum)

    target = tl.load(targets_ptr + row)
    valid = target != ignore_index
    target_logit = tl.load(row_ptr + tl.where(valid, target, 0)).to(tl.float32)
    if HAS_SOFTCAP:
        target_logit = softcap * _tanh(target_logit / softcap)
    tl.store(loss_ptr + row, tl.where(valid, lse - target_logit, 0.0))
    tl.store(lse_ptr + row, lse)


@triton.jit
def _softcapped_grad_logits_kernel(
    logits_ptr,
    targets_ptr,
    lse_ptr,
    grad_scale_ptr,
    n_cols,
    softcap,
    ignore_index,
    HAS_SOFTCAP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # Overwrites the row's logits with d loss / d logits.
    row = tl.program_id(0)
    softcap = tl.cast(softcap, tl.float32)  # fp64 when launched from a torch.compile graph (see above)
    row_ptr = logits_ptr + tl.cast(row, tl.int64) * n_cols
    target = tl.load(targets_ptr + row)
    lse = tl.load(lse_ptr + row)
    # grad_scale is d loss / d row-loss = grad_output / n_valid, read from memory so the host never syncs.
    scale = tl.where(target != ignore_index, tl.load(grad_scale_ptr), 0.0)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        z = tl.load(row_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_SOFTCAP:
            t = _tanh(z / softcap)
            z = softcap * t
        grad = (tl.exp(z - lse) - tl.where(cols == target, 1.0, 0.0)) * scale
        if HAS_SOFTCAP:
            grad = grad * (1.0 - t * t)
        tl.store(row_ptr + cols, grad.to(logits_ptr.dtype.element_ty), mask=mask)


def _kernel_settings(vocab: int, vocab_block: int | None) -> tuple[int, int]:
    block = vocab_block or min(_MAX_VOCAB_BLOCK, triton.next_power_of_2(vocab))
    if block & (block - 1):
        raise ValueError(f"vocab_block must be a power of two, got {block}")
    return block, min(max(block // 256, 1), 8)


class SoftcappedCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        softcap: float | None,
        ignore_index: int,
        chunk_size: int,
        vocab_block: int | None,
    ) -> torch.Tensor:
        n_rows = hidden.shape[0]
        vocab = weight.shape[0]
        block, num_warps = _kernel_settings(vocab, vocab_block)
        row_losses = torch.empty(n_rows, dtype=torch.float32, device=hidden.device)
        lse = torch.empty(n_rows, dtype=torch.float32, device=hidden.device)
        for start in range(0, n_rows, chunk_size):
            end = min(start + chunk_size, n_rows)
            logits = hidden[start:end] @ weight.t()  # (chunk, V)
            _softcapped_lse_forward_kernel[(end - start,)](
                logits,
                targets[start:end],
                row_losses[start:end],
                lse[start:end],
                vocab,
                softcap or 1.0,
                ignore_index,
                HAS_SOFTCAP=softcap is not None,
                BLOCK=block,
                num_warps=num_warps,
            )
            del logits  # so that the next chunk reuses its memory instead of adding to it
        n_valid = (targets != ignore_index).sum()
        ctx.save_for_backward(hidden, weight, targets, lse, n_valid)
        ctx.settings = (softcap, ignore_index, chunk_size, block, num_warps)
        # Like F.cross_entropy: with every target ignored the mean is 0/0 = nan.
        return row_losses.sum() / n_valid

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden, weight, targets, lse, n_valid = ctx.saved_tensors
        softcap, ignore_index, chunk_size, block, num_warps = ctx.settings
        wants_hidden, wants_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        n_rows, vocab = hidden.shape[0], weight.shape[0]
        grad_scale = (grad_loss.float() / n_valid).reshape(1)
        grad_hidden = torch.empty_like(hidden) if wants_hidden else None
        # fp32 so that summing many chunks' contributions loses nothing in bf16.
        grad_weight = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if wants_weight else None
        )
        for start in range(0, n_rows, chunk_size):
            end = min(start + chunk_size, n_rows)
            hidden_chunk = hidden[start:end]
            grad_logits = hidden_chunk @ weight.t()  # (chunk, V), recomputed, then overwritten in place
            _softcapped_grad_logits_kernel[(end - start,)](
                grad_logits,
                targets[start:end],
                lse[start:end],
                grad_scale,
                vocab,
                softcap or 1.0,
                ignore_index,
                HAS_SOFTCAP=softcap is not None,
                BLOCK=block,
                num_warps=num_warps,
            )
            if grad_hidden is not None:
                grad_hidden[start:end] = grad_logits @ weight
            if grad_weight is not None:
                if grad_logits.dtype == grad_weight.dtype:
                    grad_weight.addmm_(grad_logits.t(), hidden_chunk)
                else:
                    grad_weight += grad_logits.t() @ hidden_chunk
            del grad_logits  # as in the forward: one chunk of logits alive at a time
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None, None, None


def softcapped_cross_entropy_triton(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    softcap: float | None,
    ignore_index: int = -1,
    chunk_size: int | None = None,
    vocab_block: int | None = None,
) -> torch.Tensor:
    """The Triton path of `shared.kernels.softcapped_cross_entropy` (contract: the reference's).

    chunk_size: rows of logits alive at once (default: 2^26 logits' worth). vocab_block: logits per
    Triton tile along V, a power of two (default: V rounded up to a power of two, at most 4096).
    Targets must lie in [0, V) or equal ignore_index; nothing checks this on the device.
    """
    if softcap is not None and softcap <= 0:
        raise ValueError(f"softcap must be positive or None, got {softcap}")
    d_model = hidden.shape[-1]
    if weight.dim() != 2 or weight.shape[1] != d_model:
        raise ValueError(f"weight must be (V, {d_model}), got {tuple(weight.shape)}")
    hidden_rows = hidden.reshape(-1, d_model)
    target_rows = targets.reshape(-1).contiguous()
    if target_rows.shape[0] != hidden_rows.shape[0]:
        raise ValueError(f"{hidden_rows.shape[0]} hidden rows but {target_rows.shape[0]} targets")
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // weight.shape[0])
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    dtype = matmul_dtype(hidden)
    return SoftcappedCrossEntropyFunction.apply(
        hidden_rows.to(dtype).contiguous(),
        weight.to(dtype).contiguous(),
        target_rows,
        softcap,
        ignore_index,
        chunk_size,
        vocab_block,
    )
