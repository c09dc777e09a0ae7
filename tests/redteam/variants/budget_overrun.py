"""Keeps training past the budget: ignores ctx.time_left() and counts steps instead."""
import torch
import torch.nn.functional as F

STEPS = 10**9


def train(ctx):
    model = torch.nn.Sequential(torch.nn.Embedding(ctx.vocab_size, 16), torch.nn.Linear(16, ctx.vocab_size))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step, (x, y) in zip(range(STEPS), ctx.batches(8, ctx.seq_len)):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.report(step=step, loss=loss.item())
    return model
