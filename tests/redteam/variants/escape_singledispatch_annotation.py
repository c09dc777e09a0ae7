"""Has functools.singledispatch evaluate a string annotation: code the policy never parses, run from a library's frame."""
import functools

import torch


@functools.singledispatch
def handle(value):
    return value


def payload(value: "open('/etc/hostname').read()"):
    return value


def train(ctx):
    handle.register(payload)
    return torch.nn.Linear(1, 1)
