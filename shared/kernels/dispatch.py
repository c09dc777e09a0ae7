"""When the Triton kernels run, and in which dtype the matmul-bearing ones compute.

Triton decides between its GPU compiler and its CPU interpreter when a kernel is *decorated*, which
happens when `shared.kernels` is first imported. So `TRITON_INTERPRET` is read once, here, at that
import; setting it later has no effect on kernels already decorated.
"""

from __future__ import annotations

import os

import torch

try:
    import triton  # noqa: F401  (only its presence matters here)

    TRITON_AVAILABLE = True
except ImportError:  # triton ships for Linux only; elsewhere every call takes the torch reference
    TRITON_AVAILABLE = False

# True when this import decorated the kernels for Triton's CPU interpreter (tests), not for a GPU.
KERNELS_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def interpreter_requested() -> bool:
    """Whether TRITON_INTERPRET=1 is set now (not only at import)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def use_triton(*tensors: torch.Tensor) -> bool:
    """Whether the dispatching functions in `shared.kernels` take the Triton path for these inputs.

    On a GPU build: exactly when every input is a CUDA tensor. With interpreted kernels: only while
    TRITON_INTERPRET=1 is still set, because the interpreter is hundreds of times slower than torch
    and exists for tests; code that runs in the same process after a test has unset the variable
    gets the torch reference again.
    """
    if not TRITON_AVAILABLE:
        return False
    if KERNELS_INTERPRETED:
        return interpreter_requested()
    return all(tensor.is_cuda for tensor in tensors)


def matmul_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype `F.linear` would compute in for this input: autocast's if autocast is on, else its own.

    Our autograd Functions launch their GEMMs themselves, so they cast inputs to this dtype first
    (outside the Function, where the cast is differentiable) to behave like the module they replace.
    """
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype
