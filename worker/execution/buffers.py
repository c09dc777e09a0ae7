"""The two buffers the scorer and the variant's host share for evaluation.

    x       (B, T)     int64    the scorer writes the input windows of one request
    logits  (B, T, V)  float32  the host writes the model's logits for them

The scorer creates both and keeps the targets to itself; the host only ever sees inputs. On a CPU
they are one memfd the scorer passes to the host at spawn (no file on any disk, no name another
process could open). On CUDA they are device tensors the host opens by CUDA IPC, so logits never
leave the GPU: at autoresearch's eval shape a request's logits are B*T*V*4 bytes (128 * 2048 *
8192 * 4 = 8.6 GB at B=128), a device-to-device copy of a few milliseconds, where a trip through
host memory would take seconds.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class EvalBuffers:
    x: Any  # (B, T) int64: a torch tensor, or a numpy array on the scorer's CPU side
    logits: Any  # (B, T, V) float32, likewise
    keepalive: object = None  # the mapping the CPU views look into

    @staticmethod
    def nbytes(*, batch: int, seq_len: int, vocab_size: int) -> tuple[int, int]:
        return batch * seq_len * 8, batch * seq_len * vocab_size * 4


def create_cpu_fd(*, batch: int, seq_len: int, vocab_size: int) -> int:
    """The scorer's side: an anonymous shared mapping's fd, which the host inherits and maps."""
    x_bytes, logits_bytes = EvalBuffers.nbytes(batch=batch, seq_len=seq_len, vocab_size=vocab_size)
    fd = os.memfd_create("arn-eval", 0)  # no MFD_CLOEXEC: the host inherits it through pass_fds
    os.ftruncate(fd, x_bytes + logits_bytes)
    return fd


def open_cpu(fd: int, *, batch: int, seq_len: int, vocab_size: int) -> EvalBuffers:
    """The host's side of `create_cpu`: torch tensors over the shared mapping."""
    return _map(fd, batch=batch, seq_len=seq_len, vocab_size=vocab_size, numpy=False)


def open_cpu_arrays(fd: int, *, batch: int, seq_len: int, vocab_size: int) -> EvalBuffers:
    """The scorer's side on a CPU: numpy arrays over the same mapping (the scorer needs no torch there)."""
    return _map(fd, batch=batch, seq_len=seq_len, vocab_size=vocab_size, numpy=True)


def _map(fd: int, *, batch: int, seq_len: int, vocab_size: int, numpy: bool) -> EvalBuffers:
    x_bytes, logits_bytes = EvalBuffers.nbytes(batch=batch, seq_len=seq_len, vocab_size=vocab_size)
    if os.fstat(fd).st_size != x_bytes + logits_bytes:
        raise ValueError(f"the eval buffers hold {os.fstat(fd).st_size} bytes, not {x_bytes + logits_bytes}")
    mapping = mmap.mmap(fd, x_bytes + logits_bytes)
    x = np.frombuffer(mapping, dtype=np.int64, count=batch * seq_len).reshape(batch, seq_len)
    logits = np.frombuffer(mapping, dtype=np.float32, count=batch * seq_len * vocab_size, offset=x_bytes)
    logits = logits.reshape(batch, seq_len, vocab_size)
    if numpy:
        return EvalBuffers(x=x, logits=logits, keepalive=mapping)
    import torch

    return EvalBuffers(x=torch.from_numpy(x), logits=torch.from_numpy(logits), keepalive=mapping)


def create_cuda(*, batch: int, seq_len: int, vocab_size: int, device: str) -> tuple[EvalBuffers, bytes]:
    """The scorer's side on CUDA: device tensors and the IPC handles the host opens them by."""
    import torch
    from torch.multiprocessing.reductions import reduce_tensor

    x = torch.zeros((batch, seq_len), dtype=torch.int64, device=device)
    logits = torch.zeros((batch, seq_len, vocab_size), dtype=torch.float32, device=device)
    handles = pickle.dumps((reduce_tensor(x), reduce_tensor(logits)))
    return EvalBuffers(x=x, logits=logits), handles


def open_cuda(handles: bytes) -> EvalBuffers:
    """The host's side of `create_cuda`. The handles come from the scorer, never from the variant."""
    (rebuild_x, x_args), (rebuild_logits, logits_args) = pickle.Unpickler(io.BytesIO(handles)).load()
    return EvalBuffers(x=rebuild_x(*x_args), logits=rebuild_logits(*logits_args))
