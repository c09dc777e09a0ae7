"""Runs a shell command that plants a file."""
import subprocess

import torch

TARGET = "/root/planted"  # the test puts a folder of the host here


def train(ctx):
    subprocess.run(["sh", "-c", f"echo planted > {TARGET}"], check=True)
    return torch.nn.Linear(1, 1)
