"""Imports a refused module by name, past the import allowlist."""
import torch


def train(ctx):
    os = __import__("o" + "s")
    os.system("id")
    return torch.nn.Linear(1, 1)
