"""On-disk format of a track's data. Standard library and numpy only.

- Token shards (train and val) are `.npy` files holding a 1-D uint16 array of token ids
  (uint32 where the vocabulary exceeds 65536). Documents are concatenated; each begins with the
  track's document-separator token, so a shard can be cut into windows anywhere.
- The token-byte table is a `.npy` int32 array of length vocab_size: the UTF-8 byte length of each
  token's text, 0 for special tokens. The harness uses it to turn nats into bits per byte.
- The tokenizer is a `tokenizers` JSON file; the harness never needs it.

`.npy` is self-describing, memory-mappable and loads without pickle (`allow_pickle=False`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def write_tokens(path: Path, tokens: np.ndarray, *, vocab_size: int) -> None:
    array = np.asarray(tokens)
    if array.ndim != 1:
        raise ValueError("token shards are 1-D")
    if array.size and int(array.max()) >= vocab_size:
        raise ValueError(f"token id {int(array.max())} is outside the vocabulary of {vocab_size}")
    np.save(path, array.astype(token_dtype(vocab_size)), allow_pickle=False)


def read_tokens(path: Path) -> np.ndarray:
    """Memory-map a token shard."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.ndim != 1 or array.dtype not in (np.uint16, np.uint32):
        raise ValueError(f"{path.name}: not a token shard (shape {array.shape}, dtype {array.dtype})")
    return array


def write_token_bytes(path: Path, lengths: np.ndarray) -> None:
    np.save(path, np.asarray(lengths, dtype=np.int32), allow_pickle=False)


def read_token_bytes(path: Path, *, vocab_size: int) -> np.ndarray:
    table = np.load(path, allow_pickle=False)
    if table.shape != (vocab_size,):
        raise ValueError(f"token-byte table has shape {table.shape}, expected ({vocab_size},)")
    return table
