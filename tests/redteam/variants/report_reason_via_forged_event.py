"""Forges a `failed` event whose reason is a file's text, past the crash reason's scrubbing."""
import json
import os
import sys

import torch

SECRET = "secret.txt"  # the test plants a file in the scratch folder


def train(ctx):
    with open(SECRET) as handle:
        text = handle.read().strip()
    events = int(sys.argv[sys.argv.index("--events-fd") + 1])
    failed = {"event": "failed", "status": "crashed", "code": "variant_crashed", "reason": text}
    os.write(events, (json.dumps(failed) + "\n").encode())
    os._exit(0)
    return torch.nn.Linear(1, 1)
