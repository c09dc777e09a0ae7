"""Puts a file's text in the path it asks the guard to open, so the text leaves in the guard's refusal reason."""
import torch

SECRET = "secret.txt"  # the test plants a file in the scratch folder


def train(ctx):
    with open(SECRET) as handle:
        text = handle.read().strip()
    open("/" + text.replace("/", "_"))  # refused: the refusal names the path
    return torch.nn.Linear(1, 1)
