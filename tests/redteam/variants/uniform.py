"""Honest and trivial: the same logits everywhere, so val_bpb is exactly 8 on a byte-level track."""
import torch


class Uniform(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx):
        return self.logit.expand(*idx.shape, -1)  # (B, T, V)


def train(ctx):
    return Uniform(ctx.vocab_size)
