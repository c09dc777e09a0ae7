"""Leaves a thread drawing fresh batches and reporting steps through ctx once train() has returned."""
import threading
import time

import torch


class Uniform(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx):
        return self.logit.expand(*idx.shape, -1)  # (B, T, V)


def keep_going(ctx, returning):
    returning.wait()
    time.sleep(0.01)  # train() has returned by now
    step = 0
    for x, y in ctx.batches(8):  # more training data, after the budget
        step += 1
        ctx.report(step=step, loss=1.0)


def train(ctx):
    returning = threading.Event()
    threading.Thread(target=keep_going, args=(ctx, returning), daemon=True).start()
    model = Uniform(ctx.vocab_size)
    returning.set()
    return model
