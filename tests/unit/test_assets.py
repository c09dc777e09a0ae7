"""Track data on the worker: downloaded, checked against its sha256, renamed into place."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from worker.assets import AssetError, AssetStore
from worker.client import CoordinatorClient, RetryPolicy

GOOD = b"token shard bytes"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


class Server:
    """Serves asset bytes by path; counts downloads."""

    def __init__(self, served: dict[str, bytes]) -> None:
        self.served = served
        self.downloads: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sha = request.url.path.rsplit("/", 1)[-1]
        self.downloads.append(sha)
        if sha not in self.served:
            return httpx.Response(404, json={"code": "not_found", "message": "no such asset"})
        return httpx.Response(200, content=self.served[sha])


def client(server: Server) -> CoordinatorClient:
    return CoordinatorClient(
        "http://c.test", transport=httpx.MockTransport(server), retry_policy=RetryPolicy(max_attempts=1)
    )


def test_a_download_is_checked_and_stored_read_only_under_its_hash(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets")
    server = Server({GOOD_SHA: GOOD})

    folder = store.ensure(client(server), track_id="t", hashes=[GOOD_SHA])

    assert (folder / GOOD_SHA).read_bytes() == GOOD
    assert (folder / GOOD_SHA).stat().st_mode & 0o222 == 0
    assert sorted(p.name for p in folder.iterdir()) == [GOOD_SHA]  # no partial files left


def test_bytes_that_do_not_match_their_address_are_discarded(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets")
    server = Server({GOOD_SHA: b"something else"})

    with pytest.raises(AssetError, match=f"asset {GOOD_SHA[:12]} of track t arrived with sha256"):
        store.ensure(client(server), track_id="t", hashes=[GOOD_SHA])
    assert list((tmp_path / "assets").iterdir()) == []


def test_a_cached_asset_is_verified_once_per_process_then_trusted(tmp_path: Path) -> None:
    server = Server({GOOD_SHA: GOOD})
    AssetStore(tmp_path / "assets").ensure(client(server), track_id="t", hashes=[GOOD_SHA])

    restarted = AssetStore(tmp_path / "assets")
    restarted.ensure(client(server), track_id="t", hashes=[GOOD_SHA])
    restarted.ensure(client(server), track_id="t", hashes=[GOOD_SHA])

    assert server.downloads == [GOOD_SHA]


def test_a_damaged_cached_asset_is_fetched_again_at_the_next_start(tmp_path: Path) -> None:
    server = Server({GOOD_SHA: GOOD})
    AssetStore(tmp_path / "assets").ensure(client(server), track_id="t", hashes=[GOOD_SHA])
    cached = tmp_path / "assets" / GOOD_SHA
    cached.chmod(0o644)
    cached.write_bytes(b"bit rot!!!!!!!!!!")  # same size, different bytes

    AssetStore(tmp_path / "assets").ensure(client(server), track_id="t", hashes=[GOOD_SHA])

    assert cached.read_bytes() == GOOD
    assert server.downloads == [GOOD_SHA, GOOD_SHA]


def test_an_address_that_is_not_a_sha256_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="not a sha256 address"):
        AssetStore(tmp_path / "assets").ensure(client(Server({})), track_id="t", hashes=["../../etc/passwd"])
