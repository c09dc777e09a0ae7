"""Returns NaN logits (a diverged model, or a bet that NaN compares as a small loss)."""
import torch


class Diverged(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx):
        return self.logit.expand(*idx.shape, -1) * float("nan")


def train(ctx):
    return Diverged(ctx.vocab_size)
