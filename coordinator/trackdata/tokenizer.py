"""Byte-level BPE tokenizer for a track, and the token -> UTF-8 byte-length table the metric needs.

Byte-level BPE writes every raw byte as one printable stand-in character (GPT-2's
byte-to-unicode map), so a token's string has exactly one character per byte of text it stands
for: its length is its byte count. The table builder checks every character is a stand-in, so a
vocabulary that is not purely byte-level is refused rather than mismeasured.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from coordinator.trackdata.errors import TrackDataError

EOT = "<|endoftext|>"
EOT_ID = 0  # the first special token the trainer sees gets id 0


# Byte-level BPE's 256 stand-in characters, one per raw byte (GPT-2's byte-to-unicode map).
_BYTE_CHARS = frozenset(pre_tokenizers.ByteLevel.alphabet())


def train_tokenizer(texts: Iterable[str], *, vocab_size: int) -> Tokenizer:
    """Learn a byte-level BPE with `<|endoftext|>` as id 0 and exactly `vocab_size` tokens.

    The full 256-byte alphabet is seeded, so any text encodes without unknown tokens.
    """
    minimum = 1 + len(_BYTE_CHARS)
    if vocab_size <= minimum:
        raise TrackDataError(
            f"vocab_size must exceed {minimum} (one special token and 256 bytes), got {vocab_size}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=sorted(_BYTE_CHARS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if tokenizer.token_to_id(EOT) != EOT_ID:
        raise TrackDataError(f"{EOT} did not get id {EOT_ID}")
    if tokenizer.get_vocab_size() != vocab_size:
        raise TrackDataError(
            f"the training text yields only {tokenizer.get_vocab_size()} tokens, fewer than vocab_size"
            f" {vocab_size}: use more text or a smaller vocabulary"
        )
    # Documents are separated by inserting EOT_ID ourselves; text that happens to spell the
    # separator must encode as ordinary bytes, or a document could forge a boundary.
    tokenizer.encode_special_tokens = True
    return tokenizer


def tokenizer_json(tokenizer: Tokenizer) -> bytes:
    return tokenizer.to_str(pretty=False).encode("utf-8")


def token_byte_lengths(tokenizer: Tokenizer) -> np.ndarray:
    """int32[vocab]: UTF-8 bytes each token stands for; 0 for special tokens."""
    special = set(tokenizer.get_added_tokens_decoder())
    lengths = np.zeros(tokenizer.get_vocab_size(), dtype=np.int32)
    for token, token_id in tokenizer.get_vocab().items():
        if token_id in special:
            continue
        unknown = [char for char in token if char not in _BYTE_CHARS]
        if unknown:
            raise TrackDataError(
                f"token {token_id} ({token!r}) is not byte-level: {unknown[0]!r} maps to no byte"
            )
        lengths[token_id] = len(token)
    return lengths


def encode_batch(tokenizer: Tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Each text as uint32 ids led by EOT_ID, the shard format's document separator."""
    documents = []
    for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
        ids = np.empty(len(encoding.ids) + 1, dtype=np.uint32)
        ids[0] = EOT_ID
        ids[1:] = encoding.ids
        documents.append(ids)
    return documents


def load_tokenizer(data: str) -> Tokenizer:
    """Read a track's tokenizer JSON and encode the way the build did (see `train_tokenizer`)."""
    tokenizer = Tokenizer.from_str(data)
    # Not stored in the JSON, so it is set again on every load.
    tokenizer.encode_special_tokens = True
    return tokenizer
