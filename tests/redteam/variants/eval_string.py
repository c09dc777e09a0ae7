"""Computes a name at run time and evaluates it."""
import torch


def train(ctx):
    opener = eval("op" + "en")
    opener("/etc/passwd").read()
    return torch.nn.Linear(1, 1)
