"""Reserves memory by the gigabyte until something gives."""
import torch


def train(ctx):
    hoard = [torch.empty(1 << 30, dtype=torch.uint8) for _ in range(1 << 16)]
    return torch.nn.Linear(len(hoard), 1)
