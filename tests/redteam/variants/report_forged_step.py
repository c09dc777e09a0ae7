"""Writes its own progress event with a huge step straight onto the events pipe, past ctx.report's check."""
import json
import os
import sys

import torch


def train(ctx):
    events = int(sys.argv[sys.argv.index("--events-fd") + 1])
    os.write(events, (json.dumps({"event": "progress", "step": 2**64, "loss": 1.0}) + "\n").encode())
    while ctx.time_left() > 0:
        pass
    return torch.nn.Linear(1, 1)
