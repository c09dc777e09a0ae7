"""Loads libc through ctypes to call system() (or poke the harness's memory)."""
import ctypes

import torch


def train(ctx):
    ctypes.CDLL("libc.so.6").system(b"id")
    return torch.nn.Linear(1, 1)
