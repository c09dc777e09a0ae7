"""Compiles and loads a C++ extension that does whatever it likes in-process."""
import torch
from torch.utils.cpp_extension import load_inline

SOURCE = 'int run() { return system("id"); }'


def train(ctx):
    load_inline(name="x", cpp_sources=[SOURCE], functions=["run"]).run()
    return torch.nn.Linear(1, 1)
