"""A minimal GPT with the hook bench/train_throughput.py expects, standing in for baseline/train.py.

`build_model(ctx)` picks the ops when the model is built: `shared.kernels` when the module-level
USE_TRITON_KERNELS is set, `shared.kernels.reference` otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import shared.kernels
from shared.kernels import reference

USE_TRITON_KERNELS = False
DEPTH = 2
D_MODEL = 64
N_HEAD = 2
LOGIT_SOFTCAP = 15.0


class Block(nn.Module):
    def __init__(self, ops: Any) -> None:
        super().__init__()
        self.ops = ops
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL, bias=False)
        self.proj = nn.Linear(D_MODEL, D_MODEL, bias=False)
        self.up = nn.Linear(D_MODEL, 4 * D_MODEL, bias=False)
        self.down = nn.Linear(4 * D_MODEL, D_MODEL, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, seq_len, d = x.shape
        ops = self.ops
        q, k, v = self.qkv(ops.rms_norm(x)).view(batch, seq_len, 3, N_HEAD, d // N_HEAD).unbind(2)
        q = ops.rms_norm(ops.apply_rotary(q, cos, sin))  # (B, T, H, Dh)
        k = ops.rms_norm(ops.apply_rotary(k, cos, sin))
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        x = x + self.proj(y.transpose(1, 2).reshape(batch, seq_len, d))
        return x + ops.relu2_mlp(ops.rms_norm(x), self.up.weight, self.down.weight)


class GPT(nn.Module):
    cos: torch.Tensor
    sin: torch.Tensor

    def __init__(self, *, vocab_size: int, seq_len: int, ops: Any) -> None:
        super().__init__()
        self.ops = ops
        self.wte = nn.Embedding(vocab_size, D_MODEL)
        self.blocks = nn.ModuleList(Block(ops) for _ in range(DEPTH))
        self.lm_head = nn.Linear(D_MODEL, vocab_size, bias=False)
        half = D_MODEL // N_HEAD // 2
        angles = torch.outer(torch.arange(seq_len).float(), 1.0 / 10000 ** (torch.arange(half) / half))
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seq_len = idx.shape[1]
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x, self.cos[:seq_len], self.sin[:seq_len])
        x = self.ops.rms_norm(x)
        return self.ops.softcapped_cross_entropy(x, self.lm_head.weight, targets, softcap=LOGIT_SOFTCAP)


def build_model(ctx: Any) -> GPT:
    ops = shared.kernels if USE_TRITON_KERNELS else reference
    return GPT(vocab_size=ctx.vocab_size, seq_len=ctx.seq_len, ops=ops).to(ctx.device)
