"""Hides what it runs in a string."""
import torch

PAYLOAD = "import os; os.system('id')"


def train(ctx):
    exec(PAYLOAD)
    return torch.nn.Linear(1, 1)
