"""Downloads a pretrained model instead of training one."""
import urllib.request

import torch


def train(ctx):
    urllib.request.urlopen("https://example.com/pretrained.pt").read()
    return torch.nn.Linear(1, 1)
