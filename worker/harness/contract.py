"""What the harness demands of the model a variant returns, checked on every forward it makes.

Every check refuses with `ContractViolation`, whose message is the run's reason ("rejected").
The output checks are probes like those in worker.harness.probes, named in the reason as
`probe <name>: ...`: `output_shape` (a plain tensor of shape (batch, seq_len, vocab_size)),
`output_dtype` (floating point) and `finite_logits` (no NaN or inf).
"""

from __future__ import annotations

import torch

# Bound when the harness is imported, before any variant runs: a variant that reassigns
# torch.nn.functional.cross_entropy changes the module's attribute, not this name.
from torch.nn.functional import cross_entropy


class ContractViolation(Exception):
    """The model breaks the train.py contract; the run is "rejected" with this message as reason."""


class ProbeFailed(ContractViolation):
    """A named integrity probe failed; the reason starts with `probe <name>: `."""

    def __init__(self, probe: str, detail: str) -> None:
        super().__init__(f"probe {probe}: {detail}")
        self.probe = probe


OUTPUT_SHAPE = "output_shape"
OUTPUT_DTYPE = "output_dtype"
FINITE_LOGITS = "finite_logits"


def check_logits(logits: object, *, batch: int, seq_len: int, vocab_size: int) -> torch.Tensor:
    """Return `logits` if they are a finite floating (batch, seq_len, vocab_size) tensor; else refuse."""
    # `type() is`, not isinstance: a tensor subclass can redefine every operation the harness then
    # applies to it (float(), cross_entropy, isfinite), and an object can claim any __class__.
    if type(logits) is not torch.Tensor:
        if isinstance(logits, torch.Tensor):
            raise ProbeFailed(
                OUTPUT_SHAPE,
                f"model returned a {type(logits).__name__}, a subclass of torch.Tensor;"
                " logits must be a plain torch.Tensor",
            )
        raise ProbeFailed(OUTPUT_SHAPE, f"model returned {type(logits).__name__}, not a tensor of logits")
    expected = (batch, seq_len, vocab_size)
    if tuple(logits.shape) != expected:
        raise ProbeFailed(
            OUTPUT_SHAPE,
            f"logits have shape {tuple(logits.shape)}; expected {expected} = (batch, seq_len, vocab_size)",
        )
    if not logits.is_floating_point():
        raise ProbeFailed(OUTPUT_DTYPE, f"logits have dtype {logits.dtype}; expected a floating-point dtype")
    if not bool(torch.isfinite(logits).all()):
        bad = (~torch.isfinite(logits)).nonzero()[0].tolist()
        raise ProbeFailed(
            FINITE_LOGITS,
            f"logits contain non-finite values (NaN or inf), the first at (row, position, token) {tuple(bad)}",
        )
    return logits


def forward_logits(model: torch.nn.Module, x: torch.Tensor, *, vocab_size: int) -> torch.Tensor:
    """The model's logits for `x` (B, T), checked against the contract."""
    batch, seq_len = x.shape
    # The model gets a copy: were it to write into its input, the harness's copy (kept for the
    # probes) would still hold the val text.
    return check_logits(model(x.clone()), batch=batch, seq_len=seq_len, vocab_size=vocab_size)


def score_positions(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, vocab_size: int
) -> torch.Tensor:
    """Cross-entropy in nats at each position (B, T), in float32, from the model's checked logits."""
    logits = forward_logits(model, x, vocab_size=vocab_size)  # (B, T, V)
    return cross_entropy(logits.float().reshape(-1, vocab_size), y.reshape(-1), reduction="none").view_as(y)
