"""A trained model's parameters and buffers, found without calling any of the variant's methods.

`named_parameters()`, `named_modules()` and `parameters()` are methods a variant may override (to
hide a tensor from a checksum, say), so the walk reads each module's own registries instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch


def model_tensors(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """("parameter blocks.0.weight", tensor) and ("buffer ...", tensor) for the model and its submodules."""
    stack: list[tuple[str, object]] = [("", model)]
    seen: set[int] = set()
    while stack:
        prefix, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        own = object.__getattribute__(module, "__dict__")
        for kind, registry in (("parameter", "_parameters"), ("buffer", "_buffers")):
            for name, tensor in dict(own.get(registry, {})).items():
                if tensor is not None:
                    yield f"{kind} {prefix}{name}", tensor
        for name, child in reversed(dict(own.get("_modules", {})).items()):
            if child is not None:
                stack.append((f"{prefix}{name}.", child))


def count_parameters(model: torch.nn.Module) -> int:
    """Elements in the model's parameters, each shared parameter counted once."""
    unique = {id(t): t for name, t in model_tensors(model) if name.startswith("parameter ")}
    return sum(t.numel() for t in unique.values())


def state_digests(model: torch.nn.Module) -> dict[str, str]:
    """A sha256 of each parameter's and buffer's dtype, shape and bytes, by name."""
    return {name: tensor_digest(tensor) for name, tensor in model_tensors(model)}


def tensor_digest(tensor: torch.Tensor) -> str:
    data = tensor.detach()
    if data.layout != torch.strided:
        data = data.to_dense()
    digest = hashlib.sha256(f"{data.dtype} {tuple(data.shape)}".encode())
    # Reinterpreted as bytes, so every bit counts: -0.0 differs from 0.0 and NaN payloads differ.
    digest.update(data.reshape(-1).contiguous().view(torch.uint8).cpu().numpy().data)
    return digest.hexdigest()
