"""Searches every descriptor the variant's process holds (the events and request pipes, the shared eval buffer) and the data folder for the val shard's bytes."""
import hashlib
import json
import os
import sys

import torch


class Uniform(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx):
        return self.logit.expand(*idx.shape, -1)  # (B, T, V)


def contents():
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            os.set_blocking(fd, False)
            size = os.fstat(fd).st_size
            yield os.pread(fd, size, 0) if size else os.read(fd, 1 << 20)
        except OSError:
            continue
    data_dir = sys.argv[sys.argv.index("--data-dir") + 1]
    for name in os.listdir(data_dir):
        with open(os.path.join(data_dir, name), "rb") as handle:
            yield handle.read()


def train(ctx):
    val = json.load(open("spec.json"))["assets"]["val"]
    for data in contents():
        if hashlib.sha256(data).hexdigest() == val or b"\x93NUMPY" in data[8:]:
            raise RuntimeError("found the val shard")
    return Uniform(ctx.vocab_size)
