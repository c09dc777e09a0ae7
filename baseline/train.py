"""The baseline variant: a modern small GPT trained for the track's time budget.

Run it the way every variant runs, through the worker's execution, which owns the clock, the data
and the metric (spec.json is a track spec; data/ holds the track's files, named by sha256):

    python -m worker.execution --train-py baseline/train.py --spec spec.json --data-dir data \\
        --seed 1 --device auto

The model is a pre-norm GPT in the spirit of modded-nanogpt and autoresearch: rotary positions,
QK-norm, causal scaled-dot-product attention, a ReLU² MLP, an untied output head and soft-capped
logits. The blocks' matrices train with Muon (orthogonalised momentum), everything else with
AdamW, under a warmup and warmdown schedule driven by the time left, so it fits the budget on any
machine. On a "cpu" track the model is tiny and runs plain torch; elsewhere it takes autoresearch's
shape (depth 8, width 512, 2^19 tokens per step) with bf16 autocast, torch.compile and the fused
Triton kernels of `shared.kernels`.

Every UPPER_CASE number may be changed alone and the model still builds and trains. CPU_* numbers
apply only on a "cpu" track and GPU_* numbers only elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import shared.kernels
from shared.kernels import reference

# --- hyperparameters -----------------------------------------------------------------------

# The fused Triton kernels (shared.kernels) for CUDA tensors; False runs the torch references
# everywhere. Read when the model is built, so a benchmark can flip it between builds.
USE_TRITON_KERNELS = True

# Shape on a "cpu" track: small enough to learn in a minute on two cores.
CPU_DEPTH = 4  # transformer blocks
CPU_D_MODEL = 128  # width of the residual stream
CPU_HEAD_DIM = 32  # width of one attention head; heads = D_MODEL // HEAD_DIM
CPU_BATCH_SIZE = 16  # sequences per optimizer step

# Shape on a GPU track: autoresearch's depth, width and heads (33.6M parameters at vocab 8192).
GPU_DEPTH = 8  # transformer blocks
GPU_D_MODEL = 512  # width of the residual stream
GPU_HEAD_DIM = 128  # width of one attention head; heads = D_MODEL // HEAD_DIM
GPU_BATCH_TOKENS = 524_288  # tokens per optimizer step (2^19), by gradient accumulation
GPU_MICRO_BATCH_TOKENS = 262_144  # tokens per forward/backward pass (128 sequences of 2048)

MLP_RATIO = 4  # MLP hidden width, in multiples of D_MODEL
ROPE_BASE = 10000.0  # period base of the rotary position angles
LOGIT_SOFTCAP = 15.0  # logits are squashed to (-cap, cap) by cap * tanh(logits / cap)

MATRIX_LR = 0.04  # Muon learning rate of the blocks' matrices (scaled by sqrt(rows/cols) if tall)
MUON_MOMENTUM = 0.95  # Muon's Nesterov momentum
MUON_NS_STEPS = 5  # Newton–Schulz iterations that orthogonalise each update
MUON_WEIGHT_DECAY = 0.0  # decoupled weight decay of the blocks' matrices, times the learning rate
EMBEDDING_LR = 0.6  # AdamW learning rate of the token embedding (normalised right after lookup)
HEAD_LR = 0.004  # AdamW learning rate of the output head
ADAM_BETA1 = 0.8  # AdamW momentum
ADAM_BETA2 = 0.95  # AdamW second-moment decay (kept below 1)
ADAM_EPS = 1e-10  # AdamW denominator guard
WARMUP_FRACTION = 0.02  # share of the training time spent ramping the learning rates up
WARMDOWN_FRACTION = 0.5  # share of the training time spent decaying them at the end
FINAL_LR_FRACTION = 0.0  # learning rates at the end, as a fraction of the peak


@dataclass(frozen=True)
class Shape:
    depth: int
    d_model: int
    n_head: int
    head_dim: int


@dataclass(frozen=True)
class Batching:
    sequences: int  # per forward/backward pass
    accumulation: int  # passes per optimizer step


def choose_shape(hardware_class: str) -> Shape:
    cpu = hardware_class == "cpu"
    d_model = max(2, CPU_D_MODEL if cpu else GPU_D_MODEL)
    # Rotary turns pairs of channels, so a head is an even number of them.
    head_dim = max(2, (CPU_HEAD_DIM if cpu else GPU_HEAD_DIM) // 2 * 2)
    return Shape(
        depth=max(1, CPU_DEPTH if cpu else GPU_DEPTH),
        d_model=d_model,
        n_head=max(1, d_model // head_dim),
        head_dim=head_dim,
    )


def choose_batching(hardware_class: str, seq_len: int) -> Batching:
    if hardware_class == "cpu":
        return Batching(sequences=max(1, CPU_BATCH_SIZE), accumulation=1)
    sequences = max(1, GPU_MICRO_BATCH_TOKENS // seq_len)
    return Batching(sequences=sequences, accumulation=max(1, round(GPU_BATCH_TOKENS / (sequences * seq_len))))


# --- ops -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ops:
    """The four functions the model computes with: shared.kernels' (Triton on CUDA) or the references."""

    rms_norm: Callable[..., torch.Tensor]
    apply_rotary: Callable[..., torch.Tensor]
    relu2_mlp: Callable[..., torch.Tensor]
    softcapped_cross_entropy: Callable[..., torch.Tensor]


def choose_ops() -> Ops:
    # shared.kernels runs Triton only when every input is on CUDA; on a CPU it is the reference.
    if USE_TRITON_KERNELS:
        return Ops(
            rms_norm=shared.kernels.rms_norm,
            apply_rotary=shared.kernels.apply_rotary,
            relu2_mlp=shared.kernels.relu2_mlp,
            softcapped_cross_entropy=shared.kernels.softcapped_cross_entropy,
        )
    return Ops(
        rms_norm=reference.rms_norm,
        apply_rotary=reference.apply_rotary,
        relu2_mlp=reference.relu2_mlp,
        softcapped_cross_entropy=reference.softcapped_cross_entropy,
    )


# --- model ---------------------------------------------------------------------------------


def bf16_autocast(device: torch.device) -> torch.autocast:
    """bf16 matmuls on a GPU; plain fp32 on a CPU, where bf16 matmuls are slower, not faster.

    The residual stream, the norms' statistics and the loss stay fp32 either way.
    """
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def init_matrix(weight: torch.Tensor) -> None:
    """Uniform with std 1/sqrt(fan_in): unit-variance inputs give unit-variance outputs."""
    bound = math.sqrt(3.0 / weight.size(-1))
    nn.init.uniform_(weight, -bound, bound)


class CausalSelfAttention(nn.Module):
    def __init__(self, shape: Shape, ops: Ops) -> None:
        super().__init__()
        self.ops = ops
        self.n_head, self.head_dim = shape.n_head, shape.head_dim
        inner = shape.n_head * shape.head_dim
        # q, k and v stacked: one matmul, but three matrices for Muon to orthogonalise one by one.
        self.qkv = nn.Parameter(torch.empty(3, inner, shape.d_model))
        self.out = nn.Parameter(torch.zeros(shape.d_model, inner))  # each block starts as the identity
        init_matrix(self.qkv)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        qkv = F.linear(x, self.qkv.flatten(0, 1))  # (B, T, 3 * H * D)
        q, k, v = qkv.view(B, T, 3, self.n_head, self.head_dim).unbind(dim=2)  # 3 x (B, T, H, D)
        q, k = self.ops.rms_norm(q), self.ops.rms_norm(k)  # QK-norm keeps attention logits bounded
        q, k = self.ops.apply_rotary(q, cos, sin), self.ops.apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )  # (B, H, T, D)
        return F.linear(y.transpose(1, 2).reshape(B, T, -1), self.out)  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, shape: Shape, ops: Ops) -> None:
        super().__init__()
        self.ops = ops
        hidden = max(1, MLP_RATIO) * shape.d_model
        self.up = nn.Parameter(torch.empty(hidden, shape.d_model))
        self.down = nn.Parameter(torch.zeros(shape.d_model, hidden))
        init_matrix(self.up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ops.relu2_mlp(x, self.up, self.down)  # (B, T, C)


class Block(nn.Module):
    def __init__(self, shape: Shape, ops: Ops) -> None:
        super().__init__()
        self.ops = ops
        self.attn = CausalSelfAttention(shape, ops)
        self.mlp = MLP(shape, ops)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ops.rms_norm(x), cos, sin)  # (B, T, C)
        return x + self.mlp(self.ops.rms_norm(x))  # (B, T, C)


class GPT(nn.Module):
    cos: torch.Tensor  # (max_seq_len, D/2) rotary tables, buffers that follow .to(device)
    sin: torch.Tensor

    def __init__(self, *, vocab_size: int, max_seq_len: int, shape: Shape, ops: Ops) -> None:
        super().__init__()
        self.ops = ops
        self.embed = nn.Embedding(vocab_size, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape, ops) for _ in range(shape.depth))
        self.head = nn.Linear(shape.d_model, vocab_size, bias=False)
        nn.init.zeros_(self.head.weight)  # an untrained model predicts the uniform distribution
        half = shape.head_dim // 2
        inv_freq = ROPE_BASE ** (-torch.arange(half, dtype=torch.float32) / half)  # (D/2,)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)  # (T, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.size(1)
        x = self.ops.rms_norm(self.embed(idx))  # (B, T, C)
        for block in self.blocks:
            x = block(x, self.cos[:T], self.sin[:T])
        return self.ops.rms_norm(x)  # (B, T, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        with bf16_autocast(idx.device):
            logits = F.linear(self.hidden(idx), self.head.weight).float()  # (B, T, V)
        return LOGIT_SOFTCAP * torch.tanh(logits / LOGIT_SOFTCAP)  # fp32 either way

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # Inside autocast, so the head's matmuls in the cross-entropy run in bf16 too; the loss is fp32.
        with bf16_autocast(idx.device):
            return self.ops.softcapped_cross_entropy(
                self.hidden(idx), self.head.weight, targets, softcap=LOGIT_SOFTCAP
            )


def build_model(ctx) -> GPT:
    shape = choose_shape(ctx.hardware_class)
    model = GPT(vocab_size=ctx.vocab_size, max_seq_len=ctx.seq_len, shape=shape, ops=choose_ops())
    return model.to(ctx.device)


# --- optimizer -----------------------------------------------------------------------------


def orthogonalize(g: torch.Tensor, *, steps: int, dtype: torch.dtype) -> torch.Tensor:
    """Roughly U V^T of each matrix in g (..., rows, cols), by a quintic Newton–Schulz iteration.

    The coefficients (Keller Jordan's, from Muon) trade exact convergence for speed: five steps
    bring every singular value into about [0.7, 1.2], which trains as well as exactly 1. The
    iteration is stable in bf16, so on a GPU it runs there (Muon passes bf16 on CUDA, fp32 on a
    CPU); the result comes back in `dtype`.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.to(dtype)
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT  # iterate on the wide form, whose Gram matrix x x^T is the smaller one
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.mT  # (..., rows, rows)
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if tall else x


class Muon(torch.optim.Optimizer):
    """SGD with Nesterov momentum whose update is orthogonalised: every direction moves equally.

    For the blocks' matrices only; a parameter with more than two dimensions is a stack of
    matrices, each orthogonalised alone. Parameters of one shape are orthogonalised as one batch.
    """

    def __init__(
        self, params: list[nn.Parameter], *, lr: float, momentum: float, ns_steps: int, weight_decay: float
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "ns_steps": ns_steps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        for group in self.param_groups:
            by_shape: dict[tuple[int, ...], list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_shape.setdefault(tuple(p.shape), []).append(p)
            for shape, params in by_shape.items():
                self.update(params, shape=shape, group=group)

    def update(self, params: list[torch.Tensor], *, shape: tuple[int, ...], group: dict) -> None:
        grads = [p.grad for p in params if p.grad is not None]  # step() passes only those with one
        momenta = [self.state[p].setdefault("momentum", torch.zeros_like(p)) for p in params]
        momentum = group["momentum"]
        torch._foreach_lerp_(momenta, grads, 1.0 - momentum)  # m = momentum m + (1 - momentum) g
        nesterov = torch._foreach_lerp(grads, momenta, momentum)  # g + momentum (m - g)
        dtype = torch.bfloat16 if params[0].is_cuda else torch.float32
        updates = orthogonalize(torch.stack(nesterov), steps=group["ns_steps"], dtype=dtype)  # (n, ..., rows, cols)
        # A tall matrix's orthogonal update has a smaller RMS; scaling by sqrt(rows/cols) evens it out.
        scale = group["lr"] * math.sqrt(max(1.0, shape[-2] / shape[-1]))
        torch._foreach_mul_(params, 1.0 - group["lr"] * group["weight_decay"])
        torch._foreach_add_(params, [u.to(p.dtype) for u, p in zip(updates.unbind(0), params, strict=True)], alpha=-scale)


def build_optimizers(model: GPT, *, fused: bool) -> list[torch.optim.Optimizer]:
    matrices = [p for p in model.blocks.parameters() if p.ndim >= 2]
    others = [p for p in model.blocks.parameters() if p.ndim < 2]  # none yet; scalars would go here
    adam_groups = [
        {"params": list(model.embed.parameters()), "lr": EMBEDDING_LR},
        {"params": list(model.head.parameters()), "lr": HEAD_LR},
    ]
    if others:
        adam_groups.append({"params": others, "lr": HEAD_LR})
    adam = torch.optim.AdamW(
        adam_groups,
        betas=(min(ADAM_BETA1, 0.999), min(ADAM_BETA2, 0.9999)),
        eps=ADAM_EPS,
        weight_decay=0.0,
        fused=fused,
    )
    muon = Muon(
        matrices,
        lr=MATRIX_LR,
        momentum=min(MUON_MOMENTUM, 0.999),
        ns_steps=max(1, MUON_NS_STEPS),
        weight_decay=MUON_WEIGHT_DECAY,
    )
    optimizers: list[torch.optim.Optimizer] = [adam, muon]
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["peak_lr"] = group["lr"]
    return optimizers


# --- schedule ------------------------------------------------------------------------------


def lr_multiplier(progress: float) -> float:
    """Linear warmup, a flat middle, and a linear warmdown to FINAL_LR_FRACTION, over progress in [0, 1]."""
    warmup = min(max(WARMUP_FRACTION, 0.0), 1.0)
    warmdown = min(max(WARMDOWN_FRACTION, 0.0), 1.0 - warmup)
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return progress / warmup
    if progress > 1.0 - warmdown:
        remaining = (1.0 - progress) / warmdown
        return FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * remaining
    return 1.0


def training_progress(*, time_left: float, span: float) -> float:
    """The share of the schedule's `span` seconds already spent, given the seconds left of the budget."""
    return 1.0 - time_left / span if span > 0 else 1.0


def set_learning_rates(optimizers: list[torch.optim.Optimizer], multiplier: float) -> None:
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group["peak_lr"] * multiplier


# --- loop ----------------------------------------------------------------------------------


def train_step(
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    *,
    accumulation: int,
) -> torch.Tensor:
    """Forward and backward over `accumulation` batches; return their mean loss, detached."""
    losses = []
    for _ in range(accumulation):
        x, y = next(batches)  # (B, T), (B, T)
        loss = loss_of(x, y)
        (loss / accumulation).backward()
        losses.append(loss.detach())
    return torch.stack(losses).mean()


def train(ctx) -> nn.Module:
    batching = choose_batching(ctx.hardware_class, ctx.seq_len)
    model = build_model(ctx)
    cuda = ctx.device == "cuda"
    optimizers = build_optimizers(model, fused=cuda)
    # Compiling pays on a GPU; on a CPU the few seconds it takes are a large share of a short budget.
    loss_of = torch.compile(model.loss, backend="inductor", dynamic=False) if cuda else model.loss
    batches = ctx.batches(batching.sequences)
    model.train()
    span = ctx.time_left()
    step_seconds = 0.0
    step = 0
    while True:
        time_left = ctx.time_left()
        # Stop while one more step still fits, with room for one a quarter slower than the last,
        # so the model is back before the budget is spent: time past it makes the run invalid.
        if time_left <= 1.25 * step_seconds:
            break
        step += 1
        set_learning_rates(optimizers, lr_multiplier(training_progress(time_left=time_left, span=span)))
        loss = train_step(loss_of, batches, accumulation=batching.accumulation)
        for optimizer in optimizers:
            optimizer.step()
        model.zero_grad(set_to_none=True)
        loss_value = loss.item()  # waits for the step: the clock reading below is honest
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss is {loss_value} at step {step}")
        ctx.report(step=step, loss=loss_value)
        step_seconds = time_left - ctx.time_left()
        if step == 1:
            # The first step absorbs compilation; the schedule spans the time left after it.
            span = ctx.time_left()
    return model
