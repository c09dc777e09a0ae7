"""Deletes and renames files outside scratch (os.remove, os.rename): no file is opened, so no open() is seen."""
import os

import torch

VICTIM = "/root/victim"  # the test puts a file of the worker's here


def train(ctx):
    os.rename(VICTIM, VICTIM + ".moved")
    os.remove(VICTIM + ".moved")
    return torch.nn.Linear(1, 1)
