"""The val/holdout/train split: a document's side is decided by where its hash key falls.

Keying on the document's own sha256 makes the split independent of document order and sends
exact duplicates to the same side, so no val or held-out text is ever trained on. Keys below the
val threshold are val, keys from there up to the holdout threshold are the held-out pool, the
rest train. The thresholds are chosen from the data, so each side holds the requested share of
the text's bytes (overshooting by at most one document) however unevenly document sizes fall: a
fixed share of hash space would leave a small corpus of a few hundred documents with a val split
anywhere from a third to twice its target. Val comes first in key order, so adding a held-out
pool leaves the val documents exactly as they were.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from coordinator.trackdata.errors import TrackDataError


class Side(StrEnum):
    val = "val"
    holdout = "holdout"
    train = "train"


@dataclass(frozen=True)
class SplitThresholds:
    """Key bounds: val below `val`, held-out pool in [`val`, `holdout`), train from `holdout` up."""

    val: int
    holdout: int

    def side(self, text: str) -> Side:
        key = document_key(text)
        if key < self.val:
            return Side.val
        return Side.holdout if key < self.holdout else Side.train


def document_key(text: str) -> int:
    """A 64-bit key from the sha256 of the document's UTF-8 text."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def split_thresholds(documents: Iterable[str], *, val_fraction: float, holdout_fraction: float = 0.0) -> SplitThresholds:
    """Bounds such that val holds at least `val_fraction` of all UTF-8 bytes and val plus the
    held-out pool at least `val_fraction + holdout_fraction`; with no pool the bounds coincide."""
    if not 0 < val_fraction < 1:
        raise TrackDataError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if not 0 <= holdout_fraction < 1 - val_fraction:
        raise TrackDataError(
            f"holdout_fraction must be at least 0 and leave text for train beside val_fraction {val_fraction},"
            f" got {holdout_fraction}"
        )
    keys, sizes = array("Q"), array("Q")  # 16 bytes a document, so millions fit in memory
    for text in documents:
        keys.append(document_key(text))
        sizes.append(len(text.encode("utf-8")))
    if len(keys) < 2:
        raise TrackDataError(f"a train/val split needs at least 2 documents, got {len(keys)}")
    key_array = np.frombuffer(keys, dtype=np.uint64)
    order = np.argsort(key_array, kind="stable")
    cumulative = np.cumsum(np.frombuffer(sizes, dtype=np.uint64)[order])
    total = float(cumulative[-1])

    def first_key_after(share: float, what: str) -> int:
        held = int(np.searchsorted(cumulative, share * total, side="left")) + 1
        if held >= len(keys):
            raise TrackDataError(f"{what} leaves no document for train")
        return int(key_array[order[held]])

    val = first_key_after(val_fraction, f"val_fraction {val_fraction}")
    if holdout_fraction == 0:
        return SplitThresholds(val=val, holdout=val)
    holdout = first_key_after(
        val_fraction + holdout_fraction, f"val_fraction {val_fraction} with holdout_fraction {holdout_fraction}"
    )
    return SplitThresholds(val=val, holdout=holdout)


def val_threshold(documents: Iterable[str], val_fraction: float) -> int:
    """The key bound: documents keyed below it hold at least `val_fraction` of all UTF-8 bytes."""
    return split_thresholds(documents, val_fraction=val_fraction).val


def is_val_document(text: str, threshold: int) -> bool:
    return document_key(text) < threshold
