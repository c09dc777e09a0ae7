"""What the scorer asks the model, in which order: scoring batches and the probes hidden among them.

Every request is a full batch of `batch` rows of `seq_len` tokens, so the model sees one shape and
cannot tell a probe from a scoring batch by its form. Rows are windows dealt into batches at
random, and the requests come in a random order the model cannot predict (the scorer draws from
the operating system's entropy, not from the run's seed, which the variant knows):

- **warm-up**: one batch of random windows, first, unscored. Its logits must match those the same
  windows get when they are scored later (a model that answers, then trains, is caught).
- **score**: every window of each set (public val, held-out) exactly once.
- **rescore** (statelessness): rows of two earlier scoring batches, mixed and shuffled, at a later
  random point. Each row must score as it did: a model that keeps state between calls, or that
  recognises a batch it has seen, differs.
- **twin** (causality): a copy of one scoring batch with some rows changed. Changed rows must
  keep their losses before the first changed token; unchanged rows must keep every loss. Across
  one batch the twins change, for every bit of the row index, the rows with that bit set and then
  those with it clear, from token 0: so for every ordered pair of rows (r, r') some twin changes
  all of r and none of r'. More twins change every row from a random cut, for the within-row
  check. Row positions are randomly permuted first.
- **replica** (statelessness, across processes): after the model is done, a fresh copy of it, loaded
  in another process from the snapshot taken when `train()` returned, answers windows the model
  answered, mostly its last ones. A model that changed while it was evaluated (trained off the
  clock, or kept a cache) answers them differently, even one that memoises every answer it gave.

The plan is pure data (numpy); `worker.execution.scorer` carries it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

RequestKind = Literal["warmup", "score", "rescore", "twin", "replica"]
RESCORE_REQUESTS = 2
WITHIN_ROW_TWINS = 2


@dataclass(frozen=True)
class EvalSet:
    """Windows to score: inputs are tokens[:, :-1], targets tokens[:, 1:]; `scored` marks counted targets."""

    name: str  # "val" (the public shard) or "holdout"
    tokens: np.ndarray  # (N, T+1) int64
    scored: np.ndarray  # (N, T) bool


@dataclass
class Request:
    kind: RequestKind
    rows: np.ndarray  # (B,) window index of each row, into the plan's concatenated windows
    x: np.ndarray  # (B, T) int64 inputs as sent
    cuts: np.ndarray | None = None  # twin: (B,) first changed position per row, seq_len when unchanged
    scored_rows: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=bool)
    )  # score: (B,) rows that count


@dataclass
class Plan:
    windows: np.ndarray  # (W, T+1) int64: every set's windows, concatenated
    scored: np.ndarray  # (W, T) bool
    set_of: np.ndarray  # (W,) int: index into `set_names`
    set_names: list[str]
    requests: list[Request]


def public_windows(val_tokens: np.ndarray, *, seq_len: int, eval_tokens: int) -> EvalSet:
    """Consecutive non-overlapping windows from the start of the val shard, exactly `eval_tokens` targets."""
    needed = val_tokens_needed(seq_len=seq_len, eval_tokens=eval_tokens)
    if len(val_tokens) < needed:
        raise ValueError(f"the val shard holds {len(val_tokens)} tokens, too few for {eval_tokens} targets")
    count = math.ceil(eval_tokens / seq_len)
    index = np.arange(count)[:, None] * seq_len + np.arange(seq_len + 1)  # (N, T+1)
    tokens = np.asarray(val_tokens[index], dtype=np.int64)
    return EvalSet(name="val", tokens=tokens, scored=index[:, 1:] <= eval_tokens)


def holdout_set(windows: np.ndarray, *, seq_len: int) -> EvalSet:
    """Held-out windows as the coordinator drew them: (N, seq_len + 1) tokens, every target counted."""
    if windows.ndim != 2 or windows.shape[1] != seq_len + 1 or len(windows) == 0:
        raise ValueError(f"held-out windows have shape {windows.shape}; expected (N, {seq_len + 1})")
    tokens = np.asarray(windows, dtype=np.int64)
    return EvalSet(name="holdout", tokens=tokens, scored=np.ones((len(tokens), seq_len), dtype=bool))


def val_tokens_needed(*, seq_len: int, eval_tokens: int) -> int:
    """Every window's inputs plus the target after the last one."""
    return math.ceil(eval_tokens / seq_len) * seq_len + 1


def make_plan(sets: list[EvalSet], *, batch: int, vocab_size: int, rng: np.random.Generator) -> Plan:
    windows = np.concatenate([s.tokens for s in sets])
    scored = np.concatenate([s.scored for s in sets])
    set_of = np.concatenate([np.full(len(s.tokens), i) for i, s in enumerate(sets)])
    total = len(windows)
    seq_len = windows.shape[1] - 1

    def x_of(rows: np.ndarray) -> np.ndarray:
        return windows[rows, :-1].copy()

    # Score: every window once, dealt at random; a short last batch is filled with other windows
    # whose rows do not count.
    order = rng.permutation(total)
    scoring: list[Request] = []
    for start in range(0, total, batch):
        rows = order[start : start + batch]
        counted = np.ones(batch, dtype=bool)
        if len(rows) < batch:
            counted[len(rows) :] = False
            rows = np.concatenate([rows, rng.choice(total, size=batch - len(rows), replace=total < batch)])
        scoring.append(Request(kind="score", rows=rows, x=x_of(rows), scored_rows=counted))
    warmup_rows = rng.choice(total, size=batch, replace=total < batch)
    warmup = Request(kind="warmup", rows=warmup_rows, x=x_of(warmup_rows))

    # Random positions for the scoring batches; probes go after what they refer to.
    sequence: list[Request] = [warmup, *(scoring[i] for i in rng.permutation(len(scoring)))]

    def index_of(request: Request) -> int:
        return next(i for i, r in enumerate(sequence) if r is request)

    def insert_after(request: Request, earliest: int) -> None:
        sequence.insert(int(rng.integers(earliest + 1, len(sequence) + 1)), request)

    base = scoring[int(rng.integers(len(scoring)))]
    for twin in _twins(base, batch=batch, seq_len=seq_len, vocab_size=vocab_size, rng=rng):
        insert_after(twin, index_of(base))
    for _ in range(RESCORE_REQUESTS if len(scoring) > 1 else 1):
        picks = rng.choice(len(scoring), size=min(2, len(scoring)), replace=False)
        pool = np.concatenate([scoring[i].rows[scoring[i].scored_rows] for i in picks])
        rows = rng.choice(pool, size=batch, replace=len(pool) < batch)
        insert_after(
            Request(kind="rescore", rows=rows, x=x_of(rows)), max(index_of(scoring[i]) for i in picks)
        )
    return Plan(
        windows=windows, scored=scored, set_of=set_of, set_names=[s.name for s in sets], requests=sequence
    )


def _twins(
    base: Request, *, batch: int, seq_len: int, vocab_size: int, rng: np.random.Generator
) -> list[Request]:
    permutation = rng.permutation(batch)  # row r of the batch plays code permutation[r]
    bits = max(1, math.ceil(math.log2(batch))) if batch > 1 else 0
    changes: list[np.ndarray] = []  # (B,) cut per row; seq_len = unchanged
    for bit in range(bits):
        has_bit = ((permutation >> bit) & 1).astype(bool)
        for side in (has_bit, ~has_bit):
            if side.any() and not side.all():
                changes.append(np.where(side, 0, seq_len))
    for _ in range(WITHIN_ROW_TWINS):
        changes.append(
            rng.integers(1, seq_len, size=batch) if seq_len > 1 else np.zeros(batch, dtype=np.int64)
        )
    twins = []
    for cuts in changes:
        x = base.x.copy()
        for row in np.flatnonzero(cuts < seq_len):
            # A nonzero shift per row: every changed token really changes.
            shift = int(rng.integers(1, vocab_size))
            x[row, cuts[row] :] = (x[row, cuts[row] :] + shift) % vocab_size
        twins.append(Request(kind="twin", rows=base.rows.copy(), x=x, cuts=np.asarray(cuts)))
    return twins


def replica_requests(plan: Plan, *, batch: int, rng: np.random.Generator) -> list[Request]:
    """Windows for a fresh copy of the trained model to answer, once the model itself is done.

    One batch from the windows the model answered last (where any change it underwent during
    evaluation has gone furthest), one from all of them; rows dealt at random, as always.
    """
    scoring = [r for r in plan.requests if r.kind == "score"]

    def counted(requests: list[Request]) -> np.ndarray:
        return np.concatenate([r.rows[r.scored_rows] for r in requests])

    pools = [counted(scoring[-2:]), counted(scoring)]
    checks = []
    for pool in pools:
        rows = rng.choice(pool, size=batch, replace=len(pool) < batch)
        checks.append(Request(kind="replica", rows=rows, x=plan.windows[rows, :-1].copy()))
    return checks
