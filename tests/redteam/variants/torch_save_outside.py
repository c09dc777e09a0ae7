"""Writes through torch's own file API rather than open()."""
import torch


def train(ctx):
    model = torch.nn.Linear(1, 1)
    torch.save(model.state_dict(), "/etc/cron.d/planted")
    return model
