"""Score a trained model on the val shard in bits per byte, computed here and never by the variant.

The windows are fixed by the track: consecutive, non-overlapping `seq_len` windows from the start
of the val shard, exactly `eval_tokens` targets in all (the last window is cut short by masking).
Cross-entropy is taken in float32 from the model's logits, whatever dtype it computed in. Every
forward gets the full `batch_size` rows (a short last batch is padded with copies of its own
windows, which are not scored), so a compiled model sees one shape and runs the same kernels for
every batch: the probes compare passes bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from worker.harness.contract import score_positions
from worker.harness.probes import Probe, ScoredBatch


@dataclass(frozen=True)
class EvalScore:
    val_loss: float  # mean nats per counted target token
    val_bpb: float  # total nats / (ln 2 * total UTF-8 bytes of the counted targets)
    tokens: int  # counted targets: special tokens (0 bytes) are left out
    bytes: int
    probe_seconds: float = 0.0  # of the evaluation, the time the probes took (their own forwards)


@dataclass(frozen=True)
class EvalBatch:
    x: np.ndarray  # (B, T) int64
    y: np.ndarray  # (B, T) int64
    scored: np.ndarray  # (B, T) bool: inside the first eval_tokens targets


def val_tokens_needed(*, seq_len: int, eval_tokens: int) -> int:
    """Every window's inputs plus the target after the last one."""
    return math.ceil(eval_tokens / seq_len) * seq_len + 1


def eval_batches(
    val_tokens: np.ndarray, *, seq_len: int, eval_tokens: int, batch_size: int
) -> Iterator[EvalBatch]:
    if len(val_tokens) < val_tokens_needed(seq_len=seq_len, eval_tokens=eval_tokens):
        raise ValueError(f"the val shard holds {len(val_tokens)} tokens, too few for {eval_tokens} targets")
    windows = math.ceil(eval_tokens / seq_len)
    for first in range(0, windows, batch_size):
        rows = np.arange(first, min(first + batch_size, windows))
        index = rows[:, None] * seq_len + np.arange(seq_len + 1)  # (B, T+1)
        window = np.asarray(val_tokens[index], dtype=np.int64)
        yield EvalBatch(x=window[:, :-1], y=window[:, 1:], scored=index[:, 1:] <= eval_tokens)


def evaluate(
    model: torch.nn.Module,
    *,
    val_tokens: np.ndarray,
    token_bytes: np.ndarray,
    seq_len: int,
    vocab_size: int,
    eval_tokens: int,
    batch_size: int,
    device: str,
    probes: Sequence[Probe] = (),
) -> EvalScore:
    """Score `model`; raise ContractViolation if its output or a probe breaks the contract."""
    batches = list(eval_batches(val_tokens, seq_len=seq_len, eval_tokens=eval_tokens, batch_size=batch_size))
    bytes_per_token = torch.from_numpy(np.asarray(token_bytes, dtype=np.int64)).to(device)
    nats = torch.zeros((), dtype=torch.float64, device=device)
    counted_bytes = torch.zeros((), dtype=torch.int64, device=device)
    counted_tokens = torch.zeros((), dtype=torch.int64, device=device)
    first: ScoredBatch | None = None
    model.eval()
    with torch.no_grad():
        probe_started = time.perf_counter()
        for probe in probes:
            probe.before_eval(model)
        probe_seconds = time.perf_counter() - probe_started
        for batch in batches:
            x = torch.from_numpy(pad_rows(batch.x, batch_size)).to(device)  # (B, T)
            y = torch.from_numpy(pad_rows(batch.y, batch_size)).to(device)  # (B, T)
            token_nats = score_positions(model, x, y, vocab_size=vocab_size)  # (B, T)
            if first is None:
                first = ScoredBatch(x=x, y=y, nats=token_nats)
            scored = np.zeros((batch_size, seq_len), dtype=bool)
            scored[: len(batch.scored)] = batch.scored  # padding rows are never scored
            target_bytes = bytes_per_token[y]  # (B, T)
            counted = torch.from_numpy(scored).to(device) & (target_bytes > 0)
            nats += token_nats[counted].sum(dtype=torch.float64)
            counted_bytes += target_bytes[counted].sum()
            counted_tokens += counted.sum()
        assert first is not None, "eval_batches yields at least one batch"
        probe_started = time.perf_counter()
        for probe in probes:
            probe.after_eval(model, first)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        probe_seconds += time.perf_counter() - probe_started
    total_nats, total_bytes, total_tokens = float(nats), int(counted_bytes), int(counted_tokens)
    if total_bytes == 0:
        raise ValueError("the eval windows hold no scorable tokens (all have 0 bytes)")
    return EvalScore(
        val_loss=total_nats / total_tokens,
        val_bpb=total_nats / (math.log(2) * total_bytes),
        tokens=total_tokens,
        bytes=total_bytes,
        probe_seconds=probe_seconds,
    )


def pad_rows(rows: np.ndarray, batch_size: int) -> np.ndarray:
    """`rows` (n, T), n <= batch_size, repeated cyclically to (batch_size, T)."""
    return rows if len(rows) == batch_size else np.resize(rows, (batch_size, rows.shape[1]))
