"""Integrity probes (trust layer 4): does the scored model keep the contract while it is scored?

Each probe sees the model just before scoring and the first eval batch just after, in the same
eval()/no_grad mode as scoring, and compares against what the scoring pass itself produced. So a
model cannot be one thing when scored and another when probed: a probe that re-runs a batch is
checked against the numbers that went into the metric.

- checksum: every parameter and buffer is bit for bit the same after scoring as before.
- statelessness: the first eval batch, scored again after all the others, gives the same loss at
  every position (state kept anywhere, a buffer or a plain attribute, shows up here).
- causality: the tokens from position t on, changed in one row of the first batch, change neither
  the loss at that row's positions before t nor anything in the other rows. Rows are consecutive
  windows of the val text, so a row that sees the next one sees its own future.

A failed probe raises `ProbeFailed`; the reason starts with "probe <name>: ". The output checks
made on every forward (`output_shape`, `output_dtype`, `finite_logits`) live in
worker.harness.contract and fail the same way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

import torch

from worker.harness.contract import ProbeFailed, score_positions
from worker.harness.modelstate import state_digests

# How far (nats) the loss at one position may move between two passes that must agree. Passes of
# an honest model run the same kernels on the same inputs at the same shapes, so on a CPU, and
# with torch's deterministic forward kernels on a GPU, they agree bit for bit; 1e-4 leaves room
# for float32 sums reordered by atomics (relative error ~1e-6 on losses of a few nats). It also
# bounds what a cheat hiding under it can gain: at most 1e-4 nats per token, under 1.5e-4 bits
# per byte, an order of magnitude below the seed noise of ~0.002 bpb. Compared as the loss of the
# true target, in float32, so a constant shift of all logits (which changes no probability) and
# bf16 logits are judged alike.
LOSS_TOLERANCE_NATS = 1e-4


@dataclass(frozen=True)
class ScoredBatch:
    """The first eval batch as the scoring pass saw it."""

    x: torch.Tensor  # (B, T) int64 inputs
    y: torch.Tensor  # (B, T) int64 targets
    nats: torch.Tensor  # (B, T) float32: the loss at each position, as scored


class Probe(Protocol):
    name: str

    def before_eval(self, model: torch.nn.Module) -> None: ...

    def after_eval(self, model: torch.nn.Module, first: ScoredBatch) -> None: ...


def standard_probes(*, vocab_size: int) -> tuple[Probe, ...]:
    """Fresh probes for one run, in the order they run: cheapest and most specific first."""
    return (ChecksumProbe(), StatelessnessProbe(vocab_size=vocab_size), CausalityProbe(vocab_size=vocab_size))


class ChecksumProbe:
    name = "checksum"

    def __init__(self) -> None:
        self._before: dict[str, str] = {}

    def before_eval(self, model: torch.nn.Module) -> None:
        self._before = state_digests(model)

    def after_eval(self, model: torch.nn.Module, first: ScoredBatch) -> None:
        after = state_digests(model)
        if after.keys() != self._before.keys():
            added = [f"+{name}" for name in after if name not in self._before]
            removed = [f"-{name}" for name in self._before if name not in after]
            raise ProbeFailed(
                self.name, f"the model's tensors changed during evaluation: {', '.join(added + removed)}"
            )
        changed = [name for name, digest in self._before.items() if after[name] != digest]
        if changed:
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise ProbeFailed(self.name, f"{changed[0]} changed during evaluation{more}")


class StatelessnessProbe:
    name = "statelessness"

    def __init__(self, *, vocab_size: int) -> None:
        self._vocab_size = vocab_size

    def before_eval(self, model: torch.nn.Module) -> None:
        pass

    def after_eval(self, model: torch.nn.Module, first: ScoredBatch) -> None:
        again = score_positions(model, first.x, first.y, vocab_size=self._vocab_size)
        moved = float((again - first.nats).abs().max())
        if moved > LOSS_TOLERANCE_NATS:
            raise ProbeFailed(
                self.name,
                f"the first eval batch scored again at the end gave loss {float(again.mean()):.4f},"
                f" not {float(first.nats.mean()):.4f} (a position moved by {moved:.2g} nats):"
                " a model's output must depend on its input alone, not on what it saw before or on chance",
            )


class CausalityProbe:
    name = "causality"

    def __init__(self, *, vocab_size: int, rng: random.Random | None = None) -> None:
        self._vocab_size = vocab_size
        # Unseeded by default: the variant knows the run's seed, and must not know where the
        # third cut falls.
        self._rng = rng if rng is not None else random.SystemRandom()

    def before_eval(self, model: torch.nn.Module) -> None:
        pass

    def after_eval(self, model: torch.nn.Module, first: ScoredBatch) -> None:
        batch, seq_len = first.x.shape
        for row, cut in self.cuts(batch=batch, seq_len=seq_len):
            self._check(model, first, row=row, cut=cut)

    def cuts(self, *, batch: int, seq_len: int) -> list[tuple[int, int]]:
        """(row, t) pairs: in each, the row's tokens from t on are changed."""
        last = batch - 1
        cuts = [(last, seq_len // 2)]
        if batch > 1:
            # The whole row: catches a row that peeks at the next row's first token, its own
            # last position's target.
            cuts.append((last, 0))
        cuts.append((self._rng.randrange(batch), self._rng.randrange(1, seq_len) if seq_len > 1 else 0))
        return cuts

    def _check(self, model: torch.nn.Module, first: ScoredBatch, *, row: int, cut: int) -> None:
        seq_len = first.x.shape[1]
        x = first.x.clone()
        shift = self._rng.randrange(1, self._vocab_size)  # every changed token really changes
        x[row, cut:] = (x[row, cut:] + shift) % self._vocab_size
        nats = score_positions(model, x, first.y, vocab_size=self._vocab_size)
        moved = (nats - first.nats).abs() > LOSS_TOLERANCE_NATS  # (B, T)
        changed = f"token {cut}" if cut == seq_len - 1 else f"tokens {cut} to {seq_len - 1}"
        within = moved[row, :cut].nonzero()
        if within.numel():
            raise ProbeFailed(
                self.name, f"logits at position {int(within[0, 0])} changed when {changed} changed"
            )
        moved[row] = False
        elsewhere = moved.nonzero()
        if elsewhere.numel():
            other_row, position = (int(i) for i in elsewhere[0])
            raise ProbeFailed(
                self.name,
                f"logits at position {position} of row {other_row} changed when {changed} of row {row}"
                " changed: the rows of a batch must not see each other",
            )
