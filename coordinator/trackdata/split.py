"""The train/val split: a document goes to val when its hash key falls below a threshold.

Keying on the document's own sha256 makes the split independent of document order and sends
exact duplicates to the same side, so no val text is ever trained on. The threshold is chosen
from the data, so val holds the requested share of the text's bytes (overshooting by at most one
document) however unevenly document sizes fall: a fixed share of hash space would leave a small
corpus of a few hundred documents with a val split anywhere from a third to twice its target.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable

import numpy as np

from coordinator.trackdata.errors import TrackDataError


def document_key(text: str) -> int:
    """A 64-bit key from the sha256 of the document's UTF-8 text."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def val_threshold(documents: Iterable[str], val_fraction: float) -> int:
    """The key bound: documents keyed below it hold at least `val_fraction` of all UTF-8 bytes."""
    if not 0 < val_fraction < 1:
        raise TrackDataError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    keys, sizes = array("Q"), array("Q")  # 16 bytes a document, so millions fit in memory
    for text in documents:
        keys.append(document_key(text))
        sizes.append(len(text.encode("utf-8")))
    if len(keys) < 2:
        raise TrackDataError(f"a train/val split needs at least 2 documents, got {len(keys)}")
    key_array = np.frombuffer(keys, dtype=np.uint64)
    order = np.argsort(key_array, kind="stable")
    cumulative = np.cumsum(np.frombuffer(sizes, dtype=np.uint64)[order])
    in_val = int(np.searchsorted(cumulative, val_fraction * float(cumulative[-1]), side="left")) + 1
    if in_val >= len(keys):
        raise TrackDataError(f"val_fraction {val_fraction} leaves no document for train")
    return int(key_array[order[in_val]])


def is_val_document(text: str, threshold: int) -> bool:
    return document_key(text) < threshold
