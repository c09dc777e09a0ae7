"""Integrity checks on the trained model, run by the harness during evaluation.

`check_logits` runs on every eval batch. A `Probe` runs once before and once after scoring, on
the first eval batch, in the same eval()/no_grad mode; probes that catch a model breaking the
contract (causality, statelessness, parameter checksums) plug in through `evaluate(probes=...)`.
Every check refuses with `ContractViolation`, whose message is the run's reason.
"""

from __future__ import annotations

from typing import Protocol

import torch


class ContractViolation(Exception):
    """The model breaks the train.py contract; the run is "rejected" with this message as reason."""


class Probe(Protocol):
    name: str

    def before_eval(self, model: torch.nn.Module, first_batch: torch.Tensor) -> None: ...

    def after_eval(self, model: torch.nn.Module, first_batch: torch.Tensor) -> None: ...


def check_logits(logits: object, *, batch: int, seq_len: int, vocab_size: int) -> torch.Tensor:
    """Return `logits` if they are a finite floating (batch, seq_len, vocab_size) tensor; else refuse."""
    if not isinstance(logits, torch.Tensor):
        raise ContractViolation(f"model returned {type(logits).__name__}, not a tensor of logits")
    expected = (batch, seq_len, vocab_size)
    if tuple(logits.shape) != expected:
        raise ContractViolation(
            f"logits have shape {tuple(logits.shape)}; expected {expected} = (batch, seq_len, vocab_size)"
        )
    if not logits.is_floating_point():
        raise ContractViolation(f"logits have dtype {logits.dtype}; expected a floating-point dtype")
    if not bool(torch.isfinite(logits).all()):
        raise ContractViolation("logits contain non-finite values (NaN or inf)")
    return logits
