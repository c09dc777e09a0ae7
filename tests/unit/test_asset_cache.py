"""The worker's disk: a size limit on track data (least recently used first, never the track at
hand) and the run folders it keeps."""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.asset_server import AssetServer, serving
from worker.assets import PARTIAL_SUFFIX, AssetStore
from worker.client import CoordinatorClient, RetryPolicy
from worker.display import PlainDisplay
from worker.identity import KEEP_RUNS, WorkerHome


def blob(name: str) -> tuple[str, bytes]:
    data = (name.encode() * 1000)[:1000]  # 1000 bytes each
    return hashlib.sha256(data).hexdigest(), data


A1, A2, B1, C1 = (blob(name) for name in ("a1", "a2", "b1", "c1"))
TRACKS = {"a": [A1[0], A2[0]], "b": [B1[0]], "c": [C1[0]]}


@pytest.fixture
def server() -> Iterator[AssetServer]:
    with serving(dict([A1, A2, B1, C1])) as httpd:
        yield httpd


def fetch(store: AssetStore, server: AssetServer, track: str) -> None:
    with CoordinatorClient(server.url, retry_policy=RetryPolicy(max_attempts=1)) as client:
        store.ensure(client, track_id=track, hashes=TRACKS[track])


def age(folder: Path, sha256: str, seconds_ago: float) -> None:
    """Date a file's last use `seconds_ago`, as if no run had needed it since."""
    path = folder / sha256
    when = path.stat().st_atime - seconds_ago
    os.utime(path, (when, path.stat().st_mtime))


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_the_least_recently_used_files_of_other_tracks_go_first(server: AssetServer, tmp_path: Path) -> None:
    folder = tmp_path / "assets"
    out = io.StringIO()
    store = AssetStore(folder, max_bytes=3000, watcher=PlainDisplay(out))
    fetch(store, server, "a")
    fetch(store, server, "b")
    for sha in TRACKS["a"]:
        age(folder, sha, 3600)
    age(folder, B1[0], 600)  # b was used after a...
    fetch(store, server, "a")  # ...then a again: b is now the least recently used

    fetch(store, server, "c")  # 4000 bytes would be over the limit

    assert names(folder) == {A1[0], A2[0], C1[0]}
    said = [re.sub(r"^\S+ \S+ ", "", line) for line in out.getvalue().splitlines()]
    assert (
        "asset cache: deleted 1 least recently used file(s) of other tracks (1.0 kB) to stay under 3.0 kB"
        in said
    )


def test_the_track_at_hand_keeps_all_its_files_even_over_the_limit(
    server: AssetServer, tmp_path: Path
) -> None:
    folder = tmp_path / "assets"
    out = io.StringIO()
    store = AssetStore(folder, max_bytes=1500, watcher=PlainDisplay(out, verbose=False))
    fetch(store, server, "b")
    fetch(store, server, "c")
    assert names(folder) == {C1[0]}  # b made room for c

    fetch(store, server, "a")  # 2000 bytes: over the limit on its own

    assert names(folder) == {A1[0], A2[0]}
    warnings = [line for line in out.getvalue().splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "WARNING the data of the track at hand takes 2.0 kB, over the cache limit of 1.5 kB;"
        " it is kept, since the runs need it"
    )
    fetch(store, server, "a")  # said once, not at every lease
    assert len([line for line in out.getvalue().splitlines() if "WARNING" in line]) == 1


def test_an_abandoned_partial_download_of_another_track_counts_and_is_evicted(
    server: AssetServer, tmp_path: Path
) -> None:
    folder = tmp_path / "assets"
    folder.mkdir()
    stale = folder / (B1[0] + PARTIAL_SUFFIX)
    stale.write_bytes(B1[1][:900])
    os.utime(stale, (1.0e9, 1.0e9))
    store = AssetStore(folder, max_bytes=2500)

    fetch(store, server, "a")

    assert names(folder) == {A1[0], A2[0]}


def test_a_cache_used_for_one_track_is_not_emptied_by_using_it_again(
    server: AssetServer, tmp_path: Path
) -> None:
    folder = tmp_path / "assets"
    store = AssetStore.with_limits(folder, max_cache_gb=0.000002)  # 2000 bytes
    assert store.max_bytes == 2000
    fetch(store, server, "a")
    fetch(store, server, "a")

    assert names(folder) == {A1[0], A2[0]}
    assert server.ranges == [None, None]  # each file fetched once


def test_without_a_limit_nothing_is_evicted(server: AssetServer, tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets")
    for track in ("a", "b", "c"):
        fetch(store, server, track)

    assert names(tmp_path / "assets") == {A1[0], A2[0], B1[0], C1[0]}


def test_only_the_newest_run_folders_are_kept(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")
    for i in range(KEEP_RUNS + 3):
        run = home.runs_dir / f"run-{i:02d}"
        (run / "variant").mkdir(parents=True)
        (run / "variant" / "harness.log").write_text("log")
        os.utime(run, (1.0e9 + i, 1.0e9 + i))

    deleted = home.prune_runs()

    assert [p.name for p in deleted] == ["run-00", "run-01", "run-02"]
    assert sorted(p.name for p in home.runs_dir.iterdir()) == [
        f"run-{i:02d}" for i in range(3, KEEP_RUNS + 3)
    ]
    assert home.prune_runs() == []
    assert WorkerHome(tmp_path / "nowhere").prune_runs() == []
