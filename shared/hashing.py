"""Content addresses: variants by the sha256 of their source, assets by the sha256 of their bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def variant_hash(source: str) -> str:
    """The address of a train.py variant: hex sha256 of its UTF-8 source, exactly as given."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def short_hash(full: str) -> str:
    return full[:10]
