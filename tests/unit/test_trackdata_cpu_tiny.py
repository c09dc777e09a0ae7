"""The built-in cpu-tiny track's data, built for real from the text that ships with Python."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from coordinator.trackdata import EOT, EOT_ID, BuiltAssets, asset_path, build_cpu_tiny, load_tokenizer
from coordinator.trackdata.cache import cached_cpu_tiny
from coordinator.trackdata.corpus import python_docs_corpus
from shared.data_format import read_token_bytes, read_tokens
from shared.hashing import sha256_file

VOCAB = 512
EVAL_TOKENS = 32_768  # cpu-tiny's eval_tokens in coordinator.services.tracks


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuiltAssets]:
    out_dir = tmp_path_factory.mktemp("cpu-tiny")
    return out_dir, build_cpu_tiny(out_dir)


def documents_of(shards: list[np.ndarray]) -> list[np.ndarray]:
    """Cut a token stream at each separator; every document starts with one."""
    stream = np.concatenate(shards)
    assert stream[0] == EOT_ID
    starts = np.flatnonzero(stream == EOT_ID)
    ends = [*starts[1:], stream.size]
    return [stream[start + 1 : end] for start, end in zip(starts, ends, strict=True)]


def read_split(out_dir: Path, built: BuiltAssets) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    assert built.holdout is not None
    train = documents_of([read_tokens(asset_path(out_dir, sha)) for sha in built.train])
    val = documents_of([read_tokens(asset_path(out_dir, built.val))])
    holdout = documents_of([read_tokens(asset_path(out_dir, built.holdout))])
    return train, val, holdout


def test_cpu_tiny_build_gives_identical_files_in_a_fresh_folder(
    built: tuple[Path, BuiltAssets], tmp_path: Path
) -> None:
    first_dir, first = built
    second = build_cpu_tiny(tmp_path)
    assert second.hashes() == first.hashes()
    for sha in first.hashes():
        assert asset_path(tmp_path, sha).read_bytes() == asset_path(first_dir, sha).read_bytes()


def test_every_cpu_tiny_file_is_named_by_the_sha256_of_its_bytes(built: tuple[Path, BuiltAssets]) -> None:
    out_dir, assets = built
    names = sorted(path.name for path in out_dir.iterdir())
    assert names == sorted(set(assets.hashes()))
    for sha in names:
        assert sha256_file(out_dir / sha) == sha
        assert assets.sizes[sha] == (out_dir / sha).stat().st_size


def test_cpu_tiny_round_trips_every_corpus_document_exactly_once(built: tuple[Path, BuiltAssets]) -> None:
    out_dir, assets = built
    tokenizer = load_tokenizer(asset_path(out_dir, assets.tokenizer).read_text(encoding="utf-8"))
    train, val, holdout = read_split(out_dir, assets)
    assert (len(train), len(val), len(holdout)) == (
        assets.train_documents, assets.val_documents, assets.holdout_documents
    )
    decoded = [tokenizer.decode(ids.tolist()) for ids in [*train, *val, *holdout]]
    assert Counter(decoded) == Counter(python_docs_corpus())


def test_cpu_tiny_val_and_held_out_documents_never_appear_in_train_or_each_other(
    built: tuple[Path, BuiltAssets],
) -> None:
    out_dir, assets = built
    train, val, holdout = read_split(out_dir, assets)
    train_texts = {ids.tobytes() for ids in train}
    assert assets.val_documents > 0 and assets.holdout_documents > 0
    assert not [ids for ids in val if ids.tobytes() in train_texts]
    assert not [ids for ids in holdout if ids.tobytes() in train_texts]
    assert {ids.tobytes() for ids in val}.isdisjoint(ids.tobytes() for ids in holdout)


def test_cpu_tiny_sets_aside_a_large_held_out_pool_and_keeps_it_out_of_the_track_assets(
    built: tuple[Path, BuiltAssets],
) -> None:
    out_dir, assets = built
    total = assets.train_tokens + assets.val_tokens + assets.holdout_tokens
    assert 0.35 < assets.holdout_tokens / total < 0.40
    assert assets.train_tokens / total > 0.5
    assert read_tokens(asset_path(out_dir, assets.holdout or "")).size == assets.holdout_tokens
    track_assets = assets.to_track_assets()
    served = {*track_assets.train, track_assets.val, track_assets.token_bytes, track_assets.tokenizer}
    assert assets.holdout not in served
    assert assets.holdout in assets.hashes()


def test_cpu_tiny_val_is_about_five_percent_and_covers_the_eval_window(
    built: tuple[Path, BuiltAssets],
) -> None:
    _, assets = built
    share = assets.val_tokens / (assets.val_tokens + assets.holdout_tokens + assets.train_tokens)
    assert 0.03 < share < 0.08
    assert assets.val_tokens > EVAL_TOKENS


def test_cpu_tiny_token_ids_fit_the_vocabulary(built: tuple[Path, BuiltAssets]) -> None:
    out_dir, assets = built
    for sha in [*assets.train, assets.val, assets.holdout or ""]:
        shard = read_tokens(asset_path(out_dir, sha))
        assert shard.dtype == np.uint16
        assert int(shard.max()) < VOCAB
    assert sum(read_tokens(asset_path(out_dir, sha)).size for sha in assets.train) == assets.train_tokens


def test_cpu_tiny_separator_is_token_0_and_weighs_no_bytes(built: tuple[Path, BuiltAssets]) -> None:
    out_dir, assets = built
    tokenizer = load_tokenizer(asset_path(out_dir, assets.tokenizer).read_text(encoding="utf-8"))
    table = read_token_bytes(asset_path(out_dir, assets.token_bytes), vocab_size=VOCAB)
    assert tokenizer.token_to_id(EOT) == EOT_ID == 0
    assert tokenizer.get_vocab_size() == VOCAB
    assert table[0] == 0
    assert int(table[1:].min()) >= 1


def test_cpu_tiny_token_bytes_of_a_document_sum_to_its_utf8_length(built: tuple[Path, BuiltAssets]) -> None:
    out_dir, assets = built
    tokenizer = load_tokenizer(asset_path(out_dir, assets.tokenizer).read_text(encoding="utf-8"))
    table = read_token_bytes(asset_path(out_dir, assets.token_bytes), vocab_size=VOCAB)
    train, val, holdout = read_split(out_dir, assets)
    for ids in [*val, *holdout[:50], *train[:50]]:
        text = tokenizer.decode(ids.tolist())
        assert int(table[ids].sum()) == len(text.encode("utf-8"))
    # Whole shards too: what the harness divides by is exactly the text's bytes.
    val_stream = read_tokens(asset_path(out_dir, assets.val))
    val_text_bytes = sum(len(tokenizer.decode(ids.tolist()).encode("utf-8")) for ids in val)
    assert int(table[val_stream].sum()) == val_text_bytes


def test_cpu_tiny_byte_table_matches_each_whole_character_token(built: tuple[Path, BuiltAssets]) -> None:
    out_dir, assets = built
    tokenizer = load_tokenizer(asset_path(out_dir, assets.tokenizer).read_text(encoding="utf-8"))
    table = read_token_bytes(asset_path(out_dir, assets.token_bytes), vocab_size=VOCAB)
    checked = 0
    for token_id in range(1, VOCAB):
        text = tokenizer.decode([token_id])
        if "\ufffd" in text:
            continue  # a token holding part of a multi-byte character decodes to a replacement mark
        assert table[token_id] == len(text.encode("utf-8")), token_id
        checked += 1
    assert checked > VOCAB // 2


def test_rebuilding_cpu_tiny_in_place_rewrites_no_file(built: tuple[Path, BuiltAssets]) -> None:
    out_dir, assets = built
    before = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in out_dir.iterdir()}
    again = build_cpu_tiny(out_dir)
    after = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in out_dir.iterdir()}
    assert again.hashes() == assets.hashes()
    assert after == before
    assert not [name for name in after if not re.fullmatch(r"[0-9a-f]{64}", name)]


def test_the_cache_builds_once_copies_after_and_rebuilds_a_damaged_entry(
    built: tuple[Path, BuiltAssets], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _first_dir, first = built
    cache = tmp_path / "cache"
    stored = cached_cpu_tiny(tmp_path / "a", vocab_size=VOCAB, cache_dir=cache)
    assert stored == first
    [entry] = cache.iterdir()

    with caplog.at_level(logging.INFO, logger="coordinator.trackdata.cache"):
        copied = cached_cpu_tiny(tmp_path / "b", vocab_size=VOCAB, cache_dir=cache)
    assert copied == first and "comes from the cache" in caplog.text
    for sha in first.hashes():
        assert asset_path(tmp_path / "b", sha).read_bytes() == asset_path(tmp_path / "a", sha).read_bytes()

    damaged = asset_path(entry, first.val)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="coordinator.trackdata.cache"):
        rebuilt = cached_cpu_tiny(tmp_path / "c", vocab_size=VOCAB, cache_dir=cache)
    assert rebuilt == first and "damaged" in caplog.text
    assert sha256_file(asset_path(tmp_path / "c", first.val)) == first.val
    assert sha256_file(asset_path(entry, first.val)) == first.val  # the entry was built again
