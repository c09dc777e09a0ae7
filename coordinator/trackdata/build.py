"""Turn documents into a track's content-addressed assets: train shards, a val shard, the byte
table and the tokenizer, each stored under the sha256 of its bytes, and the held-out pool, stored
the same way but never part of the assets served to workers (see README.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from coordinator.trackdata.corpus import python_docs_corpus
from coordinator.trackdata.errors import TrackDataError
from coordinator.trackdata.parquet_source import ParquetTexts
from coordinator.trackdata.split import Side, SplitThresholds, split_thresholds
from coordinator.trackdata.store import AssetStore
from coordinator.trackdata.tokenizer import encode_batch, token_byte_lengths, tokenizer_json, train_tokenizer
from shared.data_format import write_token_bytes, write_tokens
from shared.track_spec import TrackAssets

_ENCODE_BATCH_DOCUMENTS = 256

CPU_TINY_VOCAB = 512
CPU_TINY_VAL_FRACTION = 0.05
# The held-out pool takes as much as the corpus can spare: verify windows drawn from a big pool
# rarely repeat, and the ~57% left still gives a CPU model far more text than a minute can learn
# (see README.md for the measured sizes).
CPU_TINY_HOLDOUT_FRACTION = 0.375
CPU_TINY_SHARD_TOKENS = 1 << 18
# The harness scores the track's eval_tokens (32_768) targets, which needs one token more.
CPU_TINY_MIN_VAL_TOKENS = 32_768 + 1

GPU_VOCAB = 8192
GPU_VAL_FRACTION = 0.01
GPU_HOLDOUT_FRACTION = 0.01
GPU_SHARD_TOKENS = 50_000_000  # 100 MB of uint16 per shard: big enough to stream, small enough to retry
# Ample text for stable merge counts at vocab 8192; learning from all of a multi-GB corpus only costs
# time and memory.
GPU_TOKENIZER_MAX_CHARS = 1_000_000_000


@dataclass(frozen=True)
class BuiltAssets:
    """What a build wrote: sha256 addresses (files under `asset_path`) and their statistics."""

    train: list[str]
    val: str
    token_bytes: str
    tokenizer: str
    vocab_size: int
    train_tokens: int
    val_tokens: int
    train_documents: int
    val_documents: int
    sizes: dict[str, int] = field(default_factory=dict)  # sha256 -> bytes on disk
    # The held-out pool's token file: in the asset store, never in the track's assets.
    holdout: str | None = None
    holdout_tokens: int = 0
    holdout_documents: int = 0

    def hashes(self) -> list[str]:
        """Every file the build wrote, the held-out pool included."""
        pool = [self.holdout] if self.holdout is not None else []
        return [*self.train, self.val, self.token_bytes, self.tokenizer, *pool]

    def to_track_assets(self) -> TrackAssets:
        """What workers may download: everything but the held-out pool."""
        return TrackAssets(
            train=tuple(self.train), val=self.val, token_bytes=self.token_bytes, tokenizer=self.tokenizer
        )


def build_track_assets(
    *,
    documents: Iterable[str],
    out_dir: Path,
    vocab_size: int,
    val_fraction: float,
    shard_tokens: int,
    min_val_tokens: int = 0,
    holdout_fraction: float = 0.0,
    min_holdout_tokens: int = 0,
    tokenizer_max_chars: int | None = None,
) -> BuiltAssets:
    """Train the tokenizer on the train split, encode every document, and store the assets.

    With `holdout_fraction` above 0, that share of the text's bytes becomes the held-out pool,
    written as one more token file (`BuiltAssets.holdout`) that is not among the track's assets.

    `documents` is read three times (split, tokenizer, encoding): pass a list or a re-iterable such as
    `ParquetTexts`; a one-shot iterator is copied into memory first. Deterministic: the same
    documents and arguments give the same hashes, and rebuilding into a folder that already holds
    them rewrites nothing.
    """
    if shard_tokens < 1:
        raise TrackDataError(f"shard_tokens must be positive, got {shard_tokens}")
    if iter(documents) is documents:
        documents = list(documents)
    thresholds = split_thresholds(documents, val_fraction=val_fraction, holdout_fraction=holdout_fraction)
    train_texts = (text for text in documents if thresholds.side(text) is Side.train)
    tokenizer = train_tokenizer(_limit_chars(train_texts, tokenizer_max_chars), vocab_size=vocab_size)

    out_dir.mkdir(parents=True, exist_ok=True)
    store = AssetStore(out_dir)
    tokenizer_sha = store.put_bytes(tokenizer_json(tokenizer))
    token_bytes_sha = store.put(lambda path: write_token_bytes(path, token_byte_lengths(tokenizer)))
    split = _encode_and_shard(
        tokenizer,
        documents,
        store=store,
        vocab_size=vocab_size,
        thresholds=thresholds,
        shard_tokens=shard_tokens,
        with_holdout=holdout_fraction > 0,
    )
    if split.val_tokens < min_val_tokens:
        raise TrackDataError(
            f"the val split holds {split.val_tokens} tokens, fewer than the {min_val_tokens} needed:"
            " raise val_fraction or add documents"
        )
    if holdout_fraction > 0 and split.holdout_tokens < max(1, min_holdout_tokens):
        raise TrackDataError(
            f"the held-out pool holds {split.holdout_tokens} tokens, fewer than the {max(1, min_holdout_tokens)}"
            " needed: raise holdout_fraction or add documents"
        )
    return BuiltAssets(
        train=split.train,
        val=split.val,
        token_bytes=token_bytes_sha,
        tokenizer=tokenizer_sha,
        vocab_size=vocab_size,
        train_tokens=split.train_tokens,
        val_tokens=split.val_tokens,
        train_documents=split.train_documents,
        val_documents=split.val_documents,
        sizes=dict(store.sizes),
        holdout=split.holdout,
        holdout_tokens=split.holdout_tokens,
        holdout_documents=split.holdout_documents,
    )


def build_cpu_tiny(out_dir: Path, *, vocab_size: int = CPU_TINY_VOCAB) -> BuiltAssets:
    """The built-in track's data, from text that ships with this Python (see corpus.py)."""
    return build_track_assets(
        documents=python_docs_corpus(),
        out_dir=out_dir,
        vocab_size=vocab_size,
        val_fraction=CPU_TINY_VAL_FRACTION,
        shard_tokens=CPU_TINY_SHARD_TOKENS,
        min_val_tokens=CPU_TINY_MIN_VAL_TOKENS,
        holdout_fraction=CPU_TINY_HOLDOUT_FRACTION,
        min_holdout_tokens=CPU_TINY_MIN_VAL_TOKENS,
    )


def build_gpu_track_assets(
    *,
    parquet_paths: Sequence[Path],
    out_dir: Path,
    text_column: str = "text",
    vocab_size: int = GPU_VOCAB,
    val_fraction: float = GPU_VAL_FRACTION,
    shard_tokens: int = GPU_SHARD_TOKENS,
    min_val_tokens: int = 0,
    holdout_fraction: float = GPU_HOLDOUT_FRACTION,
    min_holdout_tokens: int = 0,
    max_docs: int | None = None,
    tokenizer_max_chars: int | None = GPU_TOKENIZER_MAX_CHARS,
) -> BuiltAssets:
    """A GPU track's data from local parquet files (see `fetch_parquet`), in the order given."""
    return build_track_assets(
        documents=ParquetTexts(paths=list(parquet_paths), text_column=text_column, max_docs=max_docs),
        out_dir=out_dir,
        vocab_size=vocab_size,
        val_fraction=val_fraction,
        shard_tokens=shard_tokens,
        min_val_tokens=min_val_tokens,
        holdout_fraction=holdout_fraction,
        min_holdout_tokens=min_holdout_tokens,
        tokenizer_max_chars=tokenizer_max_chars,
    )


def _limit_chars(texts: Iterable[str], max_chars: int | None) -> Iterator[str]:
    """The leading texts up to `max_chars` characters in all (the one that crosses it is cut)."""
    if max_chars is None:
        yield from texts
        return
    left = max_chars
    for text in texts:
        if left <= 0:
            return
        yield text[:left]
        left -= len(text)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass
class _Split:
    train: list[str]
    val: str
    train_tokens: int
    val_tokens: int
    train_documents: int
    val_documents: int
    holdout: str | None
    holdout_tokens: int
    holdout_documents: int


def _encode_and_shard(
    tokenizer: Tokenizer,
    documents: Iterable[str],
    *,
    store: AssetStore,
    vocab_size: int,
    thresholds: SplitThresholds,
    shard_tokens: int,
    with_holdout: bool,
) -> _Split:
    train = _ShardWriter(store, vocab_size=vocab_size, shard_tokens=shard_tokens)
    held: dict[Side, list[np.ndarray]] = {Side.val: [], Side.holdout: []}
    for batch in _batched(documents, _ENCODE_BATCH_DOCUMENTS):
        for text, ids in zip(batch, encode_batch(tokenizer, batch), strict=True):
            side = thresholds.side(text)
            if side is Side.train:
                train.add(ids)
            else:
                held[side].append(ids)
    train.finish()

    def store_tokens(parts: list[np.ndarray]) -> tuple[str, int]:
        tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
        return store.put(lambda path: write_tokens(path, tokens, vocab_size=vocab_size)), int(tokens.size)

    val_sha, val_tokens = store_tokens(held[Side.val])
    holdout_sha, holdout_tokens = store_tokens(held[Side.holdout]) if with_holdout else (None, 0)
    return _Split(
        train=train.hashes,
        val=val_sha,
        train_tokens=train.tokens,
        val_tokens=val_tokens,
        train_documents=train.documents,
        val_documents=len(held[Side.val]),
        holdout=holdout_sha,
        holdout_tokens=holdout_tokens,
        holdout_documents=len(held[Side.holdout]),
    )


class _ShardWriter:
    """Cuts the concatenated train stream into shards of exactly `shard_tokens` (the last one
    shorter). A shard may start mid-document, just as a training window may."""

    def __init__(self, store: AssetStore, *, vocab_size: int, shard_tokens: int) -> None:
        self._store = store
        self._vocab_size = vocab_size
        self._shard_tokens = shard_tokens
        self._pending: list[np.ndarray] = []
        self._pending_tokens = 0
        self.hashes: list[str] = []
        self.tokens = 0
        self.documents = 0

    def add(self, ids: np.ndarray) -> None:
        self._pending.append(ids)
        self._pending_tokens += ids.size
        self.tokens += ids.size
        self.documents += 1
        if self._pending_tokens >= self._shard_tokens:
            stream = np.concatenate(self._pending)
            full = stream.size // self._shard_tokens * self._shard_tokens
            for start in range(0, full, self._shard_tokens):
                self._write(stream[start : start + self._shard_tokens])
            self._pending = [stream[full:]]
            self._pending_tokens = stream.size - full

    def finish(self) -> None:
        if self._pending_tokens:
            self._write(np.concatenate(self._pending))
        self._pending, self._pending_tokens = [], 0

    def _write(self, shard: np.ndarray) -> None:
        self.hashes.append(
            self._store.put(lambda path: write_tokens(path, shard, vocab_size=self._vocab_size))
        )
