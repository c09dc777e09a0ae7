"""Held-out windows: the text verify and calibrate runs are scored on besides the public val shard.

A track with a pool (`Track.holdout_sha256`, built by coordinator.trackdata) never serves it
whole. Each verify or calibrate lease instead gets N = ceil(eval_tokens / seq_len) windows of
seq_len + 1 consecutive pool tokens, at offsets drawn uniformly at random:

- deterministic per lease, so a retried download gets the same bytes, on any replica;
- unpredictable to workers: the draw is keyed by HMAC-SHA256 over the lease id with a secret
  derived from the coordinator's signing key under a fixed label, which no worker holds;
- independent of library versions: offsets come from HMAC-SHA256 in counter mode with rejection
  sampling (exactly uniform), not from a numpy generator whose stream could change.

The pool's tokens are memory-mapped once per file and shared by all requests (`HoldoutPools`).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.models import Lease, Track, Worker
from coordinator.services import leases as lease_service
from coordinator.services.tracks import get_track
from coordinator.trackdata.store import asset_path
from shared.data_format import read_tokens, token_dtype
from shared.protocol import ErrorCode, LeaseKind
from shared.signing import SigningKey

# Never change: it would change every lease's windows, and a retried download would differ.
SECRET_LABEL = b"autoresearch-network/holdout-windows/v1"
HOLDOUT_KINDS = frozenset({LeaseKind.verify.value, LeaseKind.calibrate.value})


def holdout_secret(key: SigningKey) -> bytes:
    """The coordinator's private key for drawing windows, derived from its signing key."""
    return hmac.new(key.raw(), SECRET_LABEL, hashlib.sha256).digest()


def has_holdout(track: Track, kind: str) -> bool:
    """Whether a lease of `kind` on `track` is scored on held-out windows."""
    return track.holdout_sha256 is not None and kind in HOLDOUT_KINDS


def window_count(track: Track) -> int:
    return math.ceil(track.eval_tokens / track.seq_len)


def window_offsets(*, secret: bytes, lease_id: str, pool_tokens: int, window: int, count: int) -> list[int]:
    """`count` offsets in [0, pool_tokens - window], uniform and independent, fixed by the lease id."""
    span = pool_tokens - window + 1
    if span < 1:
        raise ValueError(f"a pool of {pool_tokens} tokens holds no window of {window}")
    seed = hmac.new(secret, lease_id.encode("utf-8"), hashlib.sha256).digest()
    # Reject the top sliver of the 64-bit range so every offset is exactly equally likely.
    limit = 2**64 - 2**64 % span
    offsets: list[int] = []
    block = 0
    while len(offsets) < count:
        digest = hmac.new(seed, block.to_bytes(8, "big"), hashlib.sha256).digest()
        block += 1
        for start in range(0, len(digest), 8):
            value = int.from_bytes(digest[start : start + 8], "big")
            if value < limit and len(offsets) < count:
                offsets.append(value % span)
    return offsets


def windows_npy(pool: np.ndarray, offsets: Sequence[int], *, window: int, dtype: np.dtype) -> bytes:
    """The `.npy` bytes of an int array (len(offsets), window): pool[o : o + window] for each offset."""
    index = np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(window, dtype=np.int64)
    windows = np.asarray(pool[index], dtype=dtype)
    buffer = io.BytesIO()
    np.save(buffer, windows, allow_pickle=False)
    return buffer.getvalue()


class HoldoutPools:
    """The pools' tokens, memory-mapped on first use and kept for the life of the app."""

    def __init__(self, assets_dir: Path) -> None:
        self._assets_dir = assets_dir
        self._pools: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def tokens(self, sha256: str) -> np.ndarray:
        with self._lock:
            pool = self._pools.get(sha256)
            if pool is None:
                path = asset_path(self._assets_dir, sha256)
                if not path.is_file():
                    raise DomainError(
                        ErrorCode.internal, f"the held-out pool {sha256[:12]} is missing from the asset store"
                    )
                pool = self._pools[sha256] = read_tokens(path)
            return pool


def holdout_windows(
    session: Session, lease_id: str, worker: Worker, *, now: datetime, pools: HoldoutPools, secret: bytes
) -> bytes:
    """The `.npy` bytes of this lease's held-out windows, for its owner while it is live."""
    lease: Lease = lease_service.get_owned_lease(session, lease_id, worker)
    lease_service.ensure_live(lease, now=now)
    track = get_track(session, lease.track_id)
    if track.holdout_sha256 is None:
        raise DomainError(
            ErrorCode.no_holdout,
            f"track {track.id} has no held-out pool: its runs are scored on the public val shard only",
        )
    if not has_holdout(track, lease.kind):
        raise DomainError(
            ErrorCode.no_holdout,
            f"lease {lease.id} is an {lease.kind} lease: only verify and calibrate leases are scored on"
            " held-out windows",
        )
    pool = pools.tokens(track.holdout_sha256)
    window = track.seq_len + 1
    if pool.size < window:
        raise DomainError(
            ErrorCode.internal, f"the held-out pool of track {track.id} is shorter than one window of {window} tokens"
        )
    offsets = window_offsets(
        secret=secret, lease_id=lease.id, pool_tokens=int(pool.size), window=window, count=window_count(track)
    )
    return windows_npy(pool, offsets, window=window, dtype=token_dtype(track.vocab_size))
