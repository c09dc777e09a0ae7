"""Build a small, learnable track on disk for tests: real text, a real tokenizer, real shards.

The text is Python's own help topics (`pydoc_data.topics`), so it ships with the interpreter and
needs no download. Tokens are bytes plus byte-pair merges learnt from that text, up to
`vocab_size`:

- id 0 is the document separator (a special token: 0 bytes, excluded from bits per byte); the
  text never contains a NUL byte, so byte 0 needs no id of its own.
- ids 1..255 are the bytes 1..255 (1 byte each); ids from 256 up are merges, whose byte length is
  the sum of their parts. With the default `vocab_size=256` there are no merges, so every
  non-special token is exactly one byte and bits per byte equals bits per token.

The last tenth of each topic is held out as a val document, so the val shard is text the model
never trains on. Files are named by the sha256 of their bytes, as the harness expects.
"""

from __future__ import annotations

import hashlib
import os
import pydoc_data.topics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shared.data_format import write_token_bytes, write_tokens
from shared.track_spec import TrackAssets, TrackSpec

# Honest and trivial: the same logits everywhere, so val_bpb is exactly 8 on a byte-level track.
UNIFORM_MODULE = """
import torch


class Uniform(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx):
        return self.logit.expand(*idx.shape, -1)
"""
UNIFORM_MODEL = UNIFORM_MODULE + "\n\ndef train(ctx):\n    return Uniform(ctx.vocab_size)\n"

SEPARATOR = 0
BYTE_IDS = 256
TRAIN_SHARDS = 2
# The share of each topic's text held out for validation.
VAL_FRACTION = 0.1
# Merges are learnt from this many bytes of train text: enough for stable counts, quick to learn.
MERGE_SAMPLE_BYTES = 150_000


def build_track(
    tmp_path: Path,
    *,
    vocab_size: int = 256,
    seq_len: int = 64,
    eval_tokens: int = 4096,
    time_budget_s: float = 3.0,
    grace_s: float = 2.0,
    eval_batch_size: int = 8,
    n_train_tokens: int = 200_000,
    hardware_class: str = "cpu",
) -> tuple[TrackSpec, Path]:
    """Write a track's shards and token-byte table under `tmp_path/data`; return its spec and that dir."""
    if vocab_size < BYTE_IDS:
        raise ValueError(f"vocab_size must be at least {BYTE_IDS} (one id per byte)")
    train_docs, val_docs = _documents()
    merges = _learn_merges(b"".join(train_docs)[:MERGE_SAMPLE_BYTES], n_merges=vocab_size - BYTE_IDS)
    train_tokens = _tile(_encode_documents(train_docs, merges), n_train_tokens)
    # The val shard must hold every eval window plus the target after the last one.
    windows = -(-eval_tokens // seq_len)
    val_tokens = _tile(_encode_documents(val_docs, merges), windows * seq_len + 1)

    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    train = tuple(
        _write_shard(data_dir, shard, vocab_size=vocab_size)
        for shard in np.array_split(train_tokens, TRAIN_SHARDS)
    )
    val = _write_shard(data_dir, val_tokens, vocab_size=vocab_size)
    token_bytes = _write_content_addressed(
        data_dir, lambda path: write_token_bytes(path, _token_byte_lengths(merges, vocab_size=vocab_size))
    )
    spec = TrackSpec(
        track_id="synthetic",
        hardware_class=hardware_class,
        vocab_size=vocab_size,
        seq_len=seq_len,
        eval_tokens=eval_tokens,
        eval_batch_size=eval_batch_size,
        time_budget_s=time_budget_s,
        grace_s=grace_s,
        assets=TrackAssets(train=train, val=val, token_bytes=token_bytes),
    )
    return spec, data_dir


def _documents() -> tuple[list[bytes], list[bytes]]:
    """Each topic's head is a train document and its tail a val document (cut at a line break)."""
    train, val = [], []
    for name in sorted(pydoc_data.topics.topics):
        doc = pydoc_data.topics.topics[name].encode("utf-8")
        assert b"\x00" not in doc, "byte 0 is the separator's id"
        cut = doc.rfind(b"\n", 0, int(len(doc) * (1 - VAL_FRACTION))) + 1 or len(doc)
        train.append(doc[:cut])
        if cut < len(doc):
            val.append(doc[cut:])
    return train, val


def _learn_merges(text: bytes, *, n_merges: int) -> list[tuple[int, int]]:
    """Greedy byte-pair merges: repeatedly fuse the most frequent adjacent pair into a new id."""
    ids = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
    merges: list[tuple[int, int]] = []
    width = BYTE_IDS + n_merges
    for new_id in range(BYTE_IDS, BYTE_IDS + n_merges):
        counts = np.bincount(ids[:-1] * width + ids[1:], minlength=width * width)
        best = int(counts.argmax())
        if counts[best] < 2:
            break
        pair = divmod(best, width)
        merges.append(pair)
        ids = _merge(ids, pair, new_id)
    return merges


def _merge(ids: np.ndarray, pair: tuple[int, int], new_id: int) -> np.ndarray:
    first, second = pair
    hits = np.flatnonzero((ids[:-1] == first) & (ids[1:] == second))
    if first == second and hits.size:
        # In a run like "aaaa" the hits overlap (0, 1, 2); fuse left to right: keep every other one.
        run_starts = np.flatnonzero(np.diff(hits, prepend=-2) != 1)
        run_lengths = np.diff(np.append(run_starts, hits.size))
        offset_in_run = np.arange(hits.size) - np.repeat(run_starts, run_lengths)
        hits = hits[offset_in_run % 2 == 0]
    merged = ids.copy()
    merged[hits] = new_id
    return np.delete(merged, hits + 1)


def _encode_documents(docs: list[bytes], merges: list[tuple[int, int]]) -> np.ndarray:
    pieces = []
    for doc in docs:
        ids = np.frombuffer(doc, dtype=np.uint8).astype(np.int64)
        for new_id, pair in enumerate(merges, start=BYTE_IDS):
            ids = _merge(ids, pair, new_id)
        pieces.append(np.concatenate([[SEPARATOR], ids]))
    return np.concatenate(pieces)


def _token_byte_lengths(merges: list[tuple[int, int]], *, vocab_size: int) -> np.ndarray:
    lengths = np.ones(vocab_size, dtype=np.int32)
    lengths[SEPARATOR] = 0
    for new_id, (first, second) in enumerate(merges, start=BYTE_IDS):
        lengths[new_id] = lengths[first] + lengths[second]
    return lengths


def _tile(tokens: np.ndarray, length: int) -> np.ndarray:
    """Exactly `length` tokens: the stream cut short, or repeated until long enough."""
    return np.resize(tokens, length)


def _write_shard(data_dir: Path, tokens: np.ndarray, *, vocab_size: int) -> str:
    return _write_content_addressed(data_dir, lambda path: write_tokens(path, tokens, vocab_size=vocab_size))


def _write_content_addressed(data_dir: Path, write: Callable[[Path], None]) -> str:
    # np.save appends ".npy" to a bare name, so write under that suffix and rename to the bare hash.
    scratch = data_dir / f".writing-{os.getpid()}.npy"
    write(scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    os.replace(scratch, data_dir / digest)
    return digest
