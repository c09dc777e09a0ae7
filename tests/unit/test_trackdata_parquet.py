"""GPU-track sources: pinned parquet downloads (served by an in-process transport, never the
network), reading texts, and a whole build from the fetched files."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from pydoc_data.topics import topics

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coordinator.trackdata import (
    EOT_ID,
    ParquetFile,
    ParquetSource,
    ParquetSourceError,
    asset_path,
    build_gpu_track_assets,
    fetch_parquet,
    iter_parquet_texts,
    load_tokenizer,
)
from shared.data_format import read_token_bytes, read_tokens
from shared.hashing import sha256_file

REPO = "owner/corpus"
REVISION = "0123456789abcdef0123456789abcdef01234567"
HUB = "https://hub.test"
CDN = "https://cdn.test"
SHA = "a" * 64
VOCAB = 320


def write_parquet(path: Path, texts: Sequence[str | None], *, column: str = "text") -> Path:
    pq.write_table(pa.table({column: pa.array(texts, type=pa.string()), "id": list(range(len(texts)))}), path)
    return path


def paragraphs() -> list[str]:
    """Real prose, cut into paragraph-sized documents."""
    return [para.strip() for name in sorted(topics) for para in topics[name].split("\n\n") if para.strip()]


class FakeHub:
    """Serves files like the Hub: `resolve` redirects to a CDN URL, which returns the bytes."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        prefix = f"{HUB}/datasets/owner/corpus/resolve/{REVISION}/"
        if url.startswith(prefix) and url[len(prefix) :] in self.files:
            return httpx.Response(302, headers={"location": f"{CDN}/{url[len(prefix) :]}"})
        if url.startswith(f"{CDN}/") and url[len(CDN) + 1 :] in self.files:
            return httpx.Response(200, content=self.files[url[len(CDN) + 1 :]])
        return httpx.Response(404)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))


@pytest.fixture
def hub_files(tmp_path: Path) -> dict[str, bytes]:
    docs = paragraphs()
    half = len(docs) // 2
    first = write_parquet(tmp_path / "first.parquet", [*docs[:half], None, ""])
    second = write_parquet(tmp_path / "second.parquet", docs[half:])
    return {"data/train-00000.parquet": first.read_bytes(), "data/train-00001.parquet": second.read_bytes()}


def source_for(files: dict[str, bytes], *, sha_override: dict[str, str] | None = None) -> ParquetSource:
    shas = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    shas.update(sha_override or {})
    return ParquetSource(
        repo=REPO,
        revision=REVISION,
        files=[ParquetFile(path, shas[path]) for path in sorted(files)],
    )


def test_fetch_downloads_each_file_once_and_serves_later_calls_from_the_cache(
    tmp_path: Path, hub_files: dict[str, bytes]
) -> None:
    hub = FakeHub(hub_files)
    source = source_for(hub_files)
    with hub.client() as client:
        paths = fetch_parquet(source, tmp_path / "cache", base_url=HUB, client=client)
        assert len(hub.requests) == 4  # a redirect and a download per file
        again = fetch_parquet(source, tmp_path / "cache", base_url=HUB, client=client)
    assert again == paths
    assert len(hub.requests) == 4
    assert [path.read_bytes() for path in paths] == [hub_files[name] for name in sorted(hub_files)]
    assert hub.requests[0] == f"{HUB}/datasets/owner/corpus/resolve/{REVISION}/data/train-00000.parquet"


def test_a_download_with_the_wrong_hash_is_refused_and_leaves_nothing(
    tmp_path: Path, hub_files: dict[str, bytes]
) -> None:
    wrong = "f" * 64
    source = source_for(hub_files, sha_override={"data/train-00001.parquet": wrong})
    actual = hashlib.sha256(hub_files["data/train-00001.parquet"]).hexdigest()
    cache = tmp_path / "cache"
    with FakeHub(hub_files).client() as client, pytest.raises(ParquetSourceError) as refused:
        fetch_parquet(source, cache, base_url=HUB, client=client)
    assert str(refused.value) == (
        f"data/train-00001.parquet: downloaded bytes have sha256 {actual}, expected {wrong}; discarded"
    )
    first = source.files[0]
    assert sorted(path.name for path in cache.iterdir()) == [f"{first.sha256}.parquet"]


def test_a_damaged_cached_file_is_fetched_again(tmp_path: Path, hub_files: dict[str, bytes]) -> None:
    hub = FakeHub(hub_files)
    source = source_for(hub_files)
    with hub.client() as client:
        paths = fetch_parquet(source, tmp_path, base_url=HUB, client=client)
        paths[1].write_bytes(b"truncated")
        fetch_parquet(source, tmp_path, base_url=HUB, client=client)
    assert len(hub.requests) == 6
    assert sha256_file(paths[1]) == source.files[1].sha256


def test_a_missing_file_is_a_clear_error(tmp_path: Path, hub_files: dict[str, bytes]) -> None:
    source = ParquetSource(repo=REPO, revision=REVISION, files=[ParquetFile("data/gone.parquet", SHA)])
    with FakeHub(hub_files).client() as client, pytest.raises(ParquetSourceError) as refused:
        fetch_parquet(source, tmp_path / "cache", base_url=HUB, client=client)
    url = f"{HUB}/datasets/owner/corpus/resolve/{REVISION}/data/gone.parquet"
    assert str(refused.value) == f"data/gone.parquet: GET {url} answered HTTP 404"
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_transport_failure_is_a_clear_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    source = ParquetSource(repo=REPO, revision=REVISION, files=[ParquetFile("a.parquet", SHA)])
    with (
        httpx.Client(transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(ParquetSourceError) as failed,
    ):
        fetch_parquet(source, tmp_path, base_url=HUB, client=client)
    assert str(failed.value).endswith("failed: connection refused")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("repo", "revision", "path", "sha", "message"),
    [
        (REPO, "main", "a.parquet", SHA, "revision must be a full 40-hex commit id, got 'main'"),
        ("corpus", REVISION, "a.parquet", SHA, "dataset repo must look like 'owner/name', got 'corpus'"),
        (REPO, REVISION, "../a.parquet", SHA, "parquet path must be relative inside the repository"),
        (REPO, REVISION, "/a.parquet", SHA, "parquet path must be relative inside the repository"),
        (REPO, REVISION, "a.parquet", SHA.upper(), "a.parquet: sha256 must be 64 lowercase hex digits"),
    ],
)
def test_a_source_that_is_not_pinned_or_not_safe_is_refused(
    repo: str, revision: str, path: str, sha: str, message: str
) -> None:
    with pytest.raises(ParquetSourceError) as refused:
        ParquetSource(repo=repo, revision=revision, files=[ParquetFile(path, sha)])
    assert str(refused.value).startswith(message)


def test_texts_are_read_in_file_order_skipping_empty_rows(tmp_path: Path) -> None:
    first = write_parquet(tmp_path / "a.parquet", ["one", None, "", "two"])
    second = write_parquet(tmp_path / "b.parquet", ["three", "four"])
    assert list(iter_parquet_texts([first, second])) == ["one", "two", "three", "four"]
    assert list(iter_parquet_texts([first, second], max_docs=3)) == ["one", "two", "three"]
    assert list(iter_parquet_texts([first, second], max_docs=0)) == []


def test_a_file_without_the_text_column_is_refused(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", ["one"], column="content")
    with pytest.raises(
        ParquetSourceError, match=r"^a\.parquet has no column 'text' \(columns: content, id\)$"
    ):
        list(iter_parquet_texts([path]))


def test_a_text_column_that_is_not_strings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), path)
    with pytest.raises(ParquetSourceError, match=r"^a\.parquet: column 'text' holds int64, not text$"):
        list(iter_parquet_texts([path]))


def test_a_gpu_track_builds_end_to_end_from_fetched_parquet(
    tmp_path: Path, hub_files: dict[str, bytes]
) -> None:
    with FakeHub(hub_files).client() as client:
        paths = fetch_parquet(source_for(hub_files), tmp_path / "cache", base_url=HUB, client=client)
    out_dir = tmp_path / "assets"
    built = build_gpu_track_assets(
        parquet_paths=paths, out_dir=out_dir, vocab_size=VOCAB, val_fraction=0.05, shard_tokens=40_000
    )

    assert sorted(path.name for path in out_dir.iterdir()) == sorted(built.hashes())
    for sha in built.hashes():
        assert sha256_file(asset_path(out_dir, sha)) == sha
    assert built.holdout is not None  # GPU tracks set aside a held-out pool by default
    shards = [read_tokens(asset_path(out_dir, sha)) for sha in [*built.train, built.val, built.holdout]]
    assert len(built.train) == -(-built.train_tokens // 40_000) and len(built.train) > 1
    assert all(shard.dtype == np.uint16 and int(shard.max()) < VOCAB for shard in shards)

    tokenizer = load_tokenizer(asset_path(out_dir, built.tokenizer).read_text(encoding="utf-8"))
    table = read_token_bytes(asset_path(out_dir, built.token_bytes), vocab_size=VOCAB)
    assert tokenizer.get_vocab_size() == VOCAB and table[EOT_ID] == 0
    documents = []
    for shard_stream in (np.concatenate(shards[:-2]), shards[-2], shards[-1]):
        starts = np.flatnonzero(shard_stream == EOT_ID)
        for start, end in zip(starts, [*starts[1:], shard_stream.size], strict=True):
            ids = shard_stream[start + 1 : end]
            text = tokenizer.decode(ids.tolist())
            assert int(table[ids].sum()) == len(text.encode("utf-8"))
            documents.append(text)
    assert Counter(documents) == Counter(paragraphs())
    assert built.val_documents + built.holdout_documents + built.train_documents == len(documents)


def test_max_docs_limits_a_gpu_build_to_the_leading_documents(tmp_path: Path) -> None:
    docs = paragraphs()
    path = write_parquet(tmp_path / "a.parquet", docs)
    built = build_gpu_track_assets(
        parquet_paths=[path], out_dir=tmp_path / "assets", vocab_size=VOCAB, val_fraction=0.1, max_docs=300
    )
    assert built.train_documents + built.val_documents + built.holdout_documents == 300
