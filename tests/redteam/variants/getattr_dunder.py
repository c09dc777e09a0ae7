"""The same escape spelled with getattr and computed names, to dodge attribute checks."""
import torch


def train(ctx):
    name = "__cla" + "ss__"
    getattr((), name)
    return torch.nn.Linear(1, 1)
