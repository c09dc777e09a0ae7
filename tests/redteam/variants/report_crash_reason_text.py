"""Reads a file it can reach and raises with its text as the message (plain, and cut into quoted 16-character words), so the text leaves in the signed crash reason."""
import torch

SECRET = "secret.txt"  # the test plants a file in the scratch folder


def train(ctx):
    with open(SECRET) as handle:
        text = handle.read().strip()
    words = [text[i : i + 16] for i in range(0, len(text), 16)]
    raise RuntimeError(f"{text} {words}")
    return torch.nn.Linear(1, 1)
