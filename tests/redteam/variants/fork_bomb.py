"""Forks until the machine runs out of process slots (each child sleeps, holding its slot)."""
import os
import time

import torch


def train(ctx):
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    return torch.nn.Linear(1, 1)
