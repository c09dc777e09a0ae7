"""build_track_assets on small real corpora: sharding, the split, refusals, atomic writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest

from coordinator.trackdata import (
    EOT,
    EOT_ID,
    BuiltAssets,
    TrackDataError,
    asset_path,
    build_track_assets,
    is_val_document,
    load_tokenizer,
    split_thresholds,
    val_threshold,
)
from coordinator.trackdata.split import Side
from coordinator.trackdata.store import AssetStore
from coordinator.trackdata.tokenizer import tokenizer_json, train_tokenizer
from shared.data_format import read_tokens
from shared.hashing import sha256_file
from shared.track_spec import TrackAssets

REPO_ROOT = Path(__file__).resolve().parents[2]
VOCAB = 300
TOPICS = [topics[name] for name in sorted(topics)]


def hash_named(out_dir: Path) -> list[str]:
    return sorted(path.name for path in out_dir.iterdir() if re.fullmatch(r"[0-9a-f]{64}", path.name))


def test_train_shards_hold_exactly_shard_tokens_except_the_last(tmp_path: Path) -> None:
    built = build_track_assets(
        documents=TOPICS, out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.1, shard_tokens=50_000
    )
    sizes = [read_tokens(asset_path(tmp_path, sha)).size for sha in built.train]
    assert len(sizes) == -(-built.train_tokens // 50_000)
    assert sizes[:-1] == [50_000] * (len(sizes) - 1)
    assert sum(sizes) == built.train_tokens
    assert read_tokens(asset_path(tmp_path, built.train[0]))[0] == EOT_ID


def test_a_one_shot_iterator_builds_the_same_assets_as_a_list(tmp_path: Path) -> None:
    from_list = build_track_assets(
        documents=TOPICS, out_dir=tmp_path / "a", vocab_size=VOCAB, val_fraction=0.1, shard_tokens=50_000
    )
    from_generator = build_track_assets(
        documents=(text for text in TOPICS),
        out_dir=tmp_path / "b",
        vocab_size=VOCAB,
        val_fraction=0.1,
        shard_tokens=50_000,
    )
    assert from_generator == from_list


def test_text_that_spells_the_separator_is_encoded_as_plain_bytes(tmp_path: Path) -> None:
    documents = [f"{text}\nA document may quote {EOT} in its text." for text in TOPICS[:40]]
    built = build_track_assets(
        documents=documents, out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.1, shard_tokens=1 << 20
    )
    stream = np.concatenate([read_tokens(asset_path(tmp_path, sha)) for sha in [*built.train, built.val]])
    assert int((stream == EOT_ID).sum()) == len(documents)
    tokenizer = load_tokenizer(asset_path(tmp_path, built.tokenizer).read_text(encoding="utf-8"))
    assert tokenizer.encode(f"x{EOT}y").ids.count(EOT_ID) == 0


def test_exact_duplicates_never_straddle_the_split(tmp_path: Path) -> None:
    documents = TOPICS[:30] * 3
    built = build_track_assets(
        documents=documents, out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.2, shard_tokens=1 << 20
    )
    assert (built.train_documents + built.val_documents) == len(documents)
    assert built.val_documents % 3 == 0 and built.val_documents > 0
    threshold = val_threshold(documents, 0.2)
    assert {text for text in documents if is_val_document(text, threshold)}.isdisjoint(
        text for text in documents if not is_val_document(text, threshold)
    )


def test_val_threshold_puts_the_requested_share_of_bytes_in_val() -> None:
    threshold = val_threshold(TOPICS, 0.05)
    val_sizes = [len(text.encode()) for text in TOPICS if is_val_document(text, threshold)]
    total = sum(len(text.encode()) for text in TOPICS)
    assert sum(val_sizes) >= 0.05 * total
    assert sum(val_sizes) - max(val_sizes) < 0.05 * total


def test_a_val_split_smaller_than_min_val_tokens_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrackDataError) as refused:
        build_track_assets(
            documents=TOPICS[:20],
            out_dir=tmp_path,
            vocab_size=VOCAB,
            val_fraction=0.05,
            shard_tokens=1 << 20,
            min_val_tokens=10_000_000,
        )
    assert re.fullmatch(
        r"the val split holds \d+ tokens, fewer than the 10000000 needed: raise val_fraction or add documents",
        str(refused.value),
    )


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_a_val_fraction_outside_zero_and_one_is_refused(tmp_path: Path, fraction: float) -> None:
    with pytest.raises(TrackDataError, match=f"^val_fraction must be between 0 and 1, got {fraction}$"):
        build_track_assets(
            documents=TOPICS, out_dir=tmp_path, vocab_size=VOCAB, val_fraction=fraction, shard_tokens=1000
        )
    assert list(tmp_path.iterdir()) == []


def test_a_vocabulary_the_text_cannot_fill_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrackDataError, match=r"^the training text yields only "):
        build_track_assets(
            documents=["abab abab", "cdcd", "efef"] * 3,
            out_dir=tmp_path,
            vocab_size=VOCAB,
            val_fraction=0.3,
            shard_tokens=1000,
        )


def test_a_vocabulary_without_room_for_merges_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        TrackDataError, match=r"^vocab_size must exceed 257 \(one special token and 256 bytes\), got 257$"
    ):
        build_track_assets(
            documents=TOPICS, out_dir=tmp_path, vocab_size=257, val_fraction=0.1, shard_tokens=1000
        )


def test_an_address_that_is_not_a_sha256_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrackDataError, match=r"^not a sha256 address: '\.\./etc'$"):
        asset_path(tmp_path, "../etc")


def test_a_crash_mid_write_leaves_no_file_under_a_hash_name(tmp_path: Path) -> None:
    crash = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from coordinator.trackdata.store import AssetStore

        def write_half_then_die(path: Path) -> None:
            with path.open("wb") as handle:
                handle.write(b"half a shard")
                handle.flush()
            os._exit(9)

        AssetStore(Path(sys.argv[1])).put(write_half_then_die)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", crash, str(tmp_path)], env=env, check=False)
    assert result.returncode == 9
    leftovers = [path.name for path in tmp_path.iterdir()]
    assert len(leftovers) == 1 and re.fullmatch(r"\.[0-9a-f]{32}\.tmp\.npy", leftovers[0])
    assert hash_named(tmp_path) == []


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def write_then_fail(path: Path) -> None:
        path.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match=r"^disk full$"):
        AssetStore(tmp_path).put(write_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_file_under_its_hash_is_replaced_by_a_rebuild(tmp_path: Path) -> None:
    def build() -> list[str]:
        return build_track_assets(
            documents=TOPICS[:30], out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.1, shard_tokens=1 << 20
        ).hashes()

    hashes = build()
    damaged = asset_path(tmp_path, hashes[0])
    damaged.chmod(0o644)
    damaged.write_bytes(b"bit rot")
    assert build() == hashes
    assert sha256_file(damaged) == hashes[0]
    assert hash_named(tmp_path) == sorted(set(hashes))


# --- the held-out pool ------------------------------------------------------------------------


def test_a_build_without_holdout_fraction_writes_no_pool(tmp_path: Path) -> None:
    built = build_track_assets(
        documents=TOPICS[:40], out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.1, shard_tokens=1 << 20
    )
    assert (built.holdout, built.holdout_tokens, built.holdout_documents) == (None, 0, 0)
    assert hash_named(tmp_path) == sorted(set(built.hashes()))


def test_the_pool_takes_its_share_of_bytes_and_leaves_val_as_it_was(tmp_path: Path) -> None:
    without = split_thresholds(TOPICS, val_fraction=0.1)
    with_pool = split_thresholds(TOPICS, val_fraction=0.1, holdout_fraction=0.3)
    assert with_pool.val == without.val
    sizes = {side: [len(t.encode()) for t in TOPICS if with_pool.side(t) is side] for side in Side}
    total = sum(len(t.encode()) for t in TOPICS)
    assert sum(sizes[Side.val]) + sum(sizes[Side.holdout]) >= 0.4 * total
    assert sum(sizes[Side.val]) + sum(sizes[Side.holdout]) - max(sizes[Side.holdout]) < 0.4 * total

    plain = build_track_assets(
        documents=TOPICS, out_dir=tmp_path / "plain", vocab_size=VOCAB, val_fraction=0.1, shard_tokens=1 << 20
    )
    pooled = build_track_assets(
        documents=TOPICS, out_dir=tmp_path / "pooled", vocab_size=VOCAB, val_fraction=0.1, holdout_fraction=0.3,
        shard_tokens=1 << 20,
    )
    assert pooled.val_documents == plain.val_documents == len(sizes[Side.val])
    assert pooled.holdout_documents == len(sizes[Side.holdout])
    assert pooled.train_documents == len(sizes[Side.train])
    assert pooled.holdout is not None
    assert read_tokens(asset_path(tmp_path / "pooled", pooled.holdout)).size == pooled.holdout_tokens
    assert pooled.holdout in pooled.hashes()
    assert pooled.holdout not in {*pooled.train, pooled.val, pooled.token_bytes, pooled.tokenizer}
    assert pooled.to_track_assets() == TrackAssets(
        train=tuple(pooled.train), val=pooled.val, token_bytes=pooled.token_bytes, tokenizer=pooled.tokenizer
    )


def test_the_tokenizer_learns_from_the_train_side_only(tmp_path: Path) -> None:
    built = build_track_assets(
        documents=TOPICS, out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.1, holdout_fraction=0.3,
        shard_tokens=1 << 20,
    )
    thresholds = split_thresholds(TOPICS, val_fraction=0.1, holdout_fraction=0.3)
    train_only = train_tokenizer([t for t in TOPICS if thresholds.side(t) is Side.train], vocab_size=VOCAB)
    assert asset_path(tmp_path, built.tokenizer).read_bytes() == tokenizer_json(train_only)


def test_exact_duplicates_land_on_one_side_of_the_three_way_split(tmp_path: Path) -> None:
    documents = TOPICS[:30] * 3
    built = build_track_assets(
        documents=documents, out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.2, holdout_fraction=0.3,
        shard_tokens=1 << 20,
    )
    assert built.train_documents + built.val_documents + built.holdout_documents == len(documents)
    assert built.holdout_documents % 3 == 0 and built.holdout_documents > 0
    thresholds = split_thresholds(documents, val_fraction=0.2, holdout_fraction=0.3)
    sides = {text: {thresholds.side(t) for t in documents if t == text} for text in set(documents)}
    assert all(len(found) == 1 for found in sides.values())


def test_a_build_with_a_pool_is_deterministic(tmp_path: Path) -> None:
    def build(folder: str) -> BuiltAssets:
        return build_track_assets(
            documents=TOPICS, out_dir=tmp_path / folder, vocab_size=VOCAB, val_fraction=0.05,
            holdout_fraction=0.35, shard_tokens=50_000,
        )

    first, second = build("a"), build("b")
    assert second.hashes() == first.hashes() and second.holdout == first.holdout
    assert hash_named(tmp_path / "a") == hash_named(tmp_path / "b")


@pytest.mark.parametrize("fraction", [-0.1, 0.9])
def test_a_holdout_fraction_that_leaves_no_train_text_is_refused(tmp_path: Path, fraction: float) -> None:
    with pytest.raises(TrackDataError) as refused:
        build_track_assets(
            documents=TOPICS, out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.1, holdout_fraction=fraction,
            shard_tokens=1000,
        )
    assert str(refused.value) == (
        "holdout_fraction must be at least 0 and leave text for train beside val_fraction 0.1, got " + str(fraction)
    )
    assert list(tmp_path.iterdir()) == []


def test_a_pool_smaller_than_min_holdout_tokens_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrackDataError) as refused:
        build_track_assets(
            documents=TOPICS[:40], out_dir=tmp_path, vocab_size=VOCAB, val_fraction=0.05, holdout_fraction=0.05,
            min_holdout_tokens=10_000_000, shard_tokens=1 << 20,
        )
    assert re.fullmatch(
        r"the held-out pool holds \d+ tokens, fewer than the 10000000 needed: raise holdout_fraction or add documents",
        str(refused.value),
    )
