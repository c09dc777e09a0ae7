"""Noise left on in evaluation: the score is a lottery that a lucky draw can win."""
import torch


class Noisy(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx):
        logits = self.logit.expand(*idx.shape, -1)  # (B, T, V)
        return logits + torch.randn(logits.shape)


def train(ctx):
    return Noisy(ctx.vocab_size)
