"""GPU-track text from a pinned Hugging Face dataset revision: download, verify, read.

A source names a commit (not a branch, which moves) and the sha256 of every parquet file, so
the same source yields the same bytes on any machine, or an error. Downloads go to a temporary
name beside their destination and are renamed only after the hash matches: a file in the cache
under its final name is always one that was verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from coordinator.trackdata.errors import TrackDataError
from shared.hashing import sha256_file

HUGGING_FACE = "https://huggingface.co"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHUNK = 1 << 20
_READ_BATCH_ROWS = 1024


class ParquetSourceError(TrackDataError):
    """A parquet file could not be fetched, failed its hash, or lacks the text column."""


@dataclass(frozen=True)
class ParquetFile:
    path: str  # inside the dataset repository, e.g. "sample/10BT/000_00000.parquet"
    sha256: str

    def __post_init__(self) -> None:
        parts = PurePosixPath(self.path).parts
        if not parts or self.path.startswith("/") or ".." in parts:
            raise ParquetSourceError(f"parquet path must be relative inside the repository: {self.path!r}")
        if not _SHA256.match(self.sha256):
            raise ParquetSourceError(
                f"{self.path}: sha256 must be 64 lowercase hex digits, got {self.sha256!r}"
            )


@dataclass(frozen=True)
class ParquetSource:
    repo: str  # "owner/name" of a Hugging Face dataset
    revision: str  # a full commit id
    files: list[ParquetFile]
    text_column: str = "text"

    def __post_init__(self) -> None:
        if not _REPO.match(self.repo):
            raise ParquetSourceError(f"dataset repo must look like 'owner/name', got {self.repo!r}")
        if not _COMMIT.match(self.revision):
            raise ParquetSourceError(
                f"revision must be a full 40-hex commit id, got {self.revision!r}: a branch or tag can move"
            )
        if not self.files:
            raise ParquetSourceError("a parquet source needs at least one file")

    def url(self, file: ParquetFile, *, base_url: str = HUGGING_FACE) -> str:
        return f"{base_url.rstrip('/')}/datasets/{self.repo}/resolve/{self.revision}/{quote(file.path)}"


def cached_path(cache_dir: Path, file: ParquetFile) -> Path:
    return cache_dir / f"{file.sha256}.parquet"


def fetch_parquet(
    source: ParquetSource,
    cache_dir: Path,
    *,
    base_url: str = HUGGING_FACE,
    client: httpx.Client | None = None,
) -> list[Path]:
    """Make every file of `source` present and verified in `cache_dir`; return their paths in order.

    A cached file is re-hashed and kept if it matches, so a damaged one is fetched again.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    owned = client is None
    http = client if client is not None else httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0))
    try:
        paths = []
        for file in source.files:
            path = cached_path(cache_dir, file)
            if not (path.exists() and sha256_file(path) == file.sha256):
                _download(http, url=source.url(file, base_url=base_url), file=file, dest=path)
            paths.append(path)
        return paths
    finally:
        if owned:
            http.close()


def _download(client: httpx.Client, *, url: str, file: ParquetFile, dest: Path) -> None:
    tmp = dest.with_name(f".{file.sha256}.{uuid.uuid4().hex}.part")
    digest = hashlib.sha256()
    try:
        try:
            with client.stream("GET", url, follow_redirects=True) as response, tmp.open("wb") as out:
                if response.status_code != 200:
                    raise ParquetSourceError(f"{file.path}: GET {url} answered HTTP {response.status_code}")
                for chunk in response.iter_bytes(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except httpx.HTTPError as exc:
            raise ParquetSourceError(f"{file.path}: GET {url} failed: {exc}") from exc
        actual = digest.hexdigest()
        if actual != file.sha256:
            raise ParquetSourceError(
                f"{file.path}: downloaded bytes have sha256 {actual}, expected {file.sha256}; discarded"
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def iter_parquet_texts(
    paths: Iterable[Path], text_column: str = "text", max_docs: int | None = None
) -> Iterator[str]:
    """The non-empty strings of `text_column`, file by file in order, read in row batches."""
    if max_docs is not None and max_docs <= 0:
        return
    left = max_docs
    for path in paths:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        if text_column not in schema.names:
            raise ParquetSourceError(
                f"{path.name} has no column {text_column!r} (columns: {', '.join(schema.names)})"
            )
        column_type = schema.field(text_column).type
        if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
            raise ParquetSourceError(f"{path.name}: column {text_column!r} holds {column_type}, not text")
        for batch in parquet.iter_batches(batch_size=_READ_BATCH_ROWS, columns=[text_column]):
            for text in batch.column(0).to_pylist():
                if not text:
                    continue
                yield text
                if left is not None:
                    left -= 1
                    if left == 0:
                        return


@dataclass(frozen=True)
class ParquetTexts:
    """The texts of local parquet files as a re-iterable: each `iter()` reads them afresh, so a
    build can pass over a corpus larger than memory more than once."""

    paths: list[Path]
    text_column: str = "text"
    max_docs: int | None = None

    def __iter__(self) -> Iterator[str]:
        return iter_parquet_texts(self.paths, self.text_column, self.max_docs)
