"""The baseline variant: a small GPT trained for the track's time budget.

Run it the way every variant runs, through the harness, which owns the clock, the data and the
metric (spec.json is a track spec; data/ holds the track's files, named by sha256):

    python -m worker.harness --train-py baseline/train.py --spec spec.json --data-dir data \\
        --seed 1 --device auto --result result.json

The model is a pre-norm GPT: rotary positions, QK-norm, causal scaled-dot-product attention,
a ReLU² MLP, an untied output head and soft-capped logits, trained with AdamW under a warmup and
warmdown schedule driven by the time left. On a "cpu" track it is tiny; elsewhere it takes
autoresearch's shape (depth 8, width 512). Every UPPER_CASE constant may be changed alone and the
model still builds and trains.

The norm, rotary, MLP and loss helpers have the signatures of `shared.kernels`, so the fused
Triton kernels can replace them one for one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# --- hyperparameters -----------------------------------------------------------------------

# Shape on a "cpu" track: small enough to learn in a minute on two cores.
CPU_DEPTH = 4  # transformer blocks
CPU_D_MODEL = 128  # width of the residual stream
CPU_HEAD_DIM = 32  # width of one attention head; heads = D_MODEL // HEAD_DIM
CPU_BATCH_SIZE = 16  # sequences per optimizer step
CPU_LEARNING_RATE = 3e-3  # peak AdamW learning rate

# Shape on a GPU track (autoresearch's: about 50M parameters at vocab 8192).
GPU_DEPTH = 8  # transformer blocks
GPU_D_MODEL = 512  # width of the residual stream
GPU_HEAD_DIM = 128  # width of one attention head; heads = D_MODEL // HEAD_DIM
GPU_BATCH_SIZE = 32  # sequences per optimizer step
GPU_LEARNING_RATE = 1e-3  # peak AdamW learning rate

MLP_RATIO = 4  # MLP hidden width, in multiples of D_MODEL
ROPE_BASE = 10000.0  # period base of the rotary position angles
LOGIT_SOFTCAP = 15.0  # logits are squashed to (-cap, cap) by cap * tanh(logits / cap)
WEIGHT_DECAY = 0.1  # AdamW decoupled weight decay, on the blocks' matrices only
ADAM_BETA1 = 0.9  # AdamW momentum
ADAM_BETA2 = 0.95  # AdamW second-moment decay (kept below 1)
ADAM_EPS = 1e-8  # AdamW denominator guard
GRAD_CLIP = 1.0  # largest allowed global gradient norm
WARMUP_FRACTION = 0.05  # share of the time budget spent ramping the learning rate up
WARMDOWN_FRACTION = 0.5  # share of the time budget spent decaying it at the end
FINAL_LR_FRACTION = 0.1  # learning rate at the end, as a fraction of the peak


@dataclass(frozen=True)
class Shape:
    depth: int
    d_model: int
    n_head: int
    head_dim: int
    batch_size: int
    learning_rate: float


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
        batch_size=max(1, CPU_BATCH_SIZE if cpu else GPU_BATCH_SIZE),
        learning_rate=CPU_LEARNING_RATE if cpu else GPU_LEARNING_RATE,
    )


# --- model ---------------------------------------------------------------------------------


def rms_norm(
    x: torch.Tensor, weight: torch.Tensor | None = None, *, eps: float | None = None
) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),), weight, eps)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (first half, second half) channel pairs of x (B, T, H, D) by cos, sin (T, D/2)."""
    half = x.size(-1) // 2
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]  # (1, T, 1, D/2)
    x1, x2 = x.float().split(half, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).to(x.dtype)


def relu2_mlp(x: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    return F.linear(F.relu(F.linear(x, w_up)).square(), w_down)


def softcapped_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *, softcap: float | None
) -> torch.Tensor:
    logits = F.linear(hidden.reshape(-1, hidden.size(-1)), weight).float()  # (B*T, V)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    return F.cross_entropy(logits, targets.reshape(-1))


class CausalSelfAttention(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.n_head, self.head_dim = shape.n_head, shape.head_dim
        inner = shape.n_head * shape.head_dim
        self.qkv = nn.Linear(shape.d_model, 3 * inner, bias=False)
        self.out = nn.Linear(inner, shape.d_model, bias=False)
        nn.init.zeros_(self.out.weight)  # each block starts as the identity

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).unbind(dim=2)  # 3 x (B, T, H, D)
        q, k = rms_norm(q), rms_norm(k)  # QK-norm keeps attention logits bounded
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )  # (B, H, T, D)
        return self.out(y.transpose(1, 2).reshape(B, T, -1))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        hidden = max(1, MLP_RATIO) * shape.d_model
        self.up = nn.Linear(shape.d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, shape.d_model, bias=False)
        nn.init.zeros_(self.down.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu2_mlp(x, self.up.weight, self.down.weight)  # (B, T, C)


class Block(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(shape)
        self.mlp = MLP(shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(rms_norm(x), cos, sin)  # (B, T, C)
        return x + self.mlp(rms_norm(x))  # (B, T, C)


class GPT(nn.Module):
    cos: torch.Tensor  # (max_seq_len, D/2) rotary tables, buffers that follow .to(device)
    sin: torch.Tensor

    def __init__(self, *, vocab_size: int, max_seq_len: int, shape: Shape) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.depth))
        self.head = nn.Linear(shape.d_model, vocab_size, bias=False)
        nn.init.zeros_(self.head.weight)  # an untrained model predicts the uniform distribution
        half = shape.head_dim // 2
        inv_freq = ROPE_BASE ** (-torch.arange(half, dtype=torch.float32) / half)  # (D/2,)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)  # (T, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.size(1)
        # bf16 matmuls on a GPU; the loss and the returned logits are fp32 either way.
        with torch.autocast(device_type=idx.device.type, dtype=torch.bfloat16, enabled=idx.is_cuda):
            x = self.embed(idx)  # (B, T, C)
            for block in self.blocks:
                x = block(x, self.cos[:T], self.sin[:T])
            return rms_norm(x)  # (B, T, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        logits = F.linear(self.hidden(idx), self.head.weight).float()  # (B, T, V)
        return LOGIT_SOFTCAP * torch.tanh(logits / LOGIT_SOFTCAP)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return softcapped_cross_entropy(self.hidden(idx), self.head.weight, targets, softcap=LOGIT_SOFTCAP)


def build_model(ctx) -> GPT:
    shape = choose_shape(ctx.hardware_class)
    return GPT(vocab_size=ctx.vocab_size, max_seq_len=ctx.seq_len, shape=shape).to(ctx.device)


# --- optimizer -----------------------------------------------------------------------------


def build_optimizer(model: GPT, *, learning_rate: float, fused: bool) -> torch.optim.Optimizer:
    # The blocks' matrices are the group a Muon-style optimizer would take; the embedding and the
    # head stay on AdamW, undecayed.
    matrices = [p for p in model.blocks.parameters() if p.ndim == 2]
    others = [*model.embed.parameters(), *model.head.parameters()]
    optimizer = torch.optim.AdamW(
        [{"params": matrices, "weight_decay": WEIGHT_DECAY}, {"params": others, "weight_decay": 0.0}],
        lr=learning_rate,
        betas=(min(ADAM_BETA1, 0.999), min(ADAM_BETA2, 0.9999)),
        eps=ADAM_EPS,
        fused=fused,
    )
    for group in optimizer.param_groups:
        group["peak_lr"] = learning_rate
    return optimizer


# --- schedule ------------------------------------------------------------------------------


def lr_multiplier(progress: float) -> float:
    """Linear warmup, a flat middle, and a linear warmdown to FINAL_LR_FRACTION, over progress in [0, 1]."""
    warmup = min(max(WARMUP_FRACTION, 0.0), 1.0)
    warmdown = min(max(WARMDOWN_FRACTION, 0.0), 1.0 - warmup)
    if progress < warmup:
        return progress / warmup
    if progress > 1.0 - warmdown:
        remaining = max(0.0, 1.0 - progress) / warmdown
        return FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * remaining
    return 1.0


# --- loop ----------------------------------------------------------------------------------


def train(ctx) -> nn.Module:
    shape = choose_shape(ctx.hardware_class)
    model = build_model(ctx)
    optimizer = build_optimizer(model, learning_rate=shape.learning_rate, fused=ctx.device == "cuda")
    model.train()
    step_seconds = 0.0
    for step, (x, y) in enumerate(ctx.batches(shape.batch_size), start=1):  # (B, T), (B, T)
        time_left = ctx.time_left()
        # Stop while one more step still fits, so the model is back before the budget is spent.
        if time_left <= step_seconds:
            break
        multiplier = lr_multiplier(1.0 - time_left / ctx.time_budget_s)
        for group in optimizer.param_groups:
            group["lr"] = group["peak_lr"] * multiplier
        loss = model.loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()  # waits for the step: the clock reading below is honest
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss is {loss_value} at step {step}")
        ctx.report(step=step, loss=loss_value)
        step_seconds = time_left - ctx.time_left()
    return model
