"""Drawing a lease's held-out windows: deterministic per lease, keyed by the coordinator's secret."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from coordinator.errors import DomainError
from coordinator.services.holdout import HoldoutPools, holdout_secret, window_offsets, windows_npy
from shared.data_format import token_dtype, write_tokens
from shared.hashing import sha256_file
from shared.protocol import ErrorCode
from shared.signing import SigningKey

KEY = SigningKey.from_raw(bytes(range(32)))
SECRET = holdout_secret(KEY)


def test_the_secret_is_derived_from_the_signing_key_and_is_not_the_key() -> None:
    assert holdout_secret(SigningKey.from_raw(bytes(range(32)))) == SECRET
    assert holdout_secret(SigningKey.from_raw(bytes(32))) != SECRET
    assert len(SECRET) == 32 and KEY.raw() != SECRET


def test_offsets_are_fixed_by_the_lease_and_the_secret() -> None:
    def draw(lease_id: str, secret: bytes = SECRET) -> list[int]:
        return window_offsets(secret=secret, lease_id=lease_id, pool_tokens=10_000, window=33, count=64)

    assert draw("lease-1") == draw("lease-1")
    assert draw("lease-1") != draw("lease-2")
    assert draw("lease-1") != draw("lease-1", secret=bytes(32))


def test_offsets_cover_every_start_in_the_pool_and_none_past_it() -> None:
    offsets = window_offsets(secret=SECRET, lease_id="lease-1", pool_tokens=40, window=33, count=8000)
    counts = Counter(offsets)
    assert sorted(counts) == list(range(8))  # 40 - 33 + 1 possible starts
    assert min(counts.values()) > 850 and max(counts.values()) < 1150  # about 1000 each


def test_a_pool_shorter_than_a_window_has_no_offsets() -> None:
    with pytest.raises(ValueError, match=r"^a pool of 32 tokens holds no window of 33$"):
        window_offsets(secret=SECRET, lease_id="lease-1", pool_tokens=32, window=33, count=1)


@pytest.mark.parametrize(("vocab_size", "dtype"), [(512, np.uint16), (65_536, np.uint16), (100_000, np.uint32)])
def test_windows_are_npy_bytes_of_the_tracks_token_dtype(vocab_size: int, dtype: type) -> None:
    pool = (np.arange(1000, dtype=np.int64) * 97) % vocab_size
    data = windows_npy(pool, [0, 500, 967], window=33, dtype=token_dtype(vocab_size))
    windows = np.load(io.BytesIO(data), allow_pickle=False)
    assert (windows.shape, windows.dtype) == ((3, 33), np.dtype(dtype))
    assert np.array_equal(windows[1], pool[500:533])
    assert np.array_equal(windows[2], pool[967:1000])


def test_pools_are_memory_mapped_once_and_shared(tmp_path: Path) -> None:
    write_tokens(tmp_path / "pool.npy", np.arange(300) % 256, vocab_size=256)
    sha = sha256_file(tmp_path / "pool.npy")
    (tmp_path / "pool.npy").rename(tmp_path / sha)
    pools = HoldoutPools(tmp_path)
    first = pools.tokens(sha)
    assert isinstance(first, np.memmap)
    assert pools.tokens(sha) is first
    assert int(first[299]) == 299 % 256


def test_a_pool_missing_from_the_asset_store_is_an_internal_error(tmp_path: Path) -> None:
    with pytest.raises(DomainError) as missing:
        HoldoutPools(tmp_path).tokens("a" * 64)
    assert (missing.value.code, missing.value.message) == (
        ErrorCode.internal, "the held-out pool aaaaaaaaaaaa is missing from the asset store"
    )
