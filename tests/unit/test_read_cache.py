"""The hot-read cache on the in-process store: what is served, what is recomputed, and when."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from coordinator.kv import LocalKV
from coordinator.read_cache import ALL_TRACKS, OutsideChanges, ReadCache, track_scope


class Board(BaseModel):
    head: str
    version: int


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Board:
        self.calls += 1
        return Board(head="abc", version=self.calls)


def test_an_answer_is_computed_once_until_its_track_changes() -> None:
    cache, compute = ReadCache(LocalKV(), ttl_s=60), Counting()
    read = lambda: cache.read(track_scope("t"), "leaderboard", 100, Board, compute)  # noqa: E731
    assert [read().version for _ in range(3)] == [1, 1, 1]
    assert (cache.hits, cache.misses) == (2, 1)
    cache.invalidate({"u"})  # another track
    assert read().version == 1
    cache.invalidate({"t"})
    assert [read().version for _ in range(2)] == [2, 2]


def test_answers_are_kept_apart_by_their_parameters() -> None:
    cache, compute = ReadCache(LocalKV(), ttl_s=60), Counting()
    first = cache.read(track_scope("t"), "leaderboard", 10, Board, compute)
    other = cache.read(track_scope("t"), "leaderboard", 20, Board, compute)
    assert (first.version, other.version, compute.calls) == (1, 2, 2)


def test_any_tracks_change_invalidates_reads_over_all_tracks() -> None:
    cache, compute = ReadCache(LocalKV(), ttl_s=60), Counting()
    cache.read(ALL_TRACKS, "tracks", (), Board, compute)
    cache.invalidate({"t"})
    assert cache.read(ALL_TRACKS, "tracks", (), Board, compute).version == 2


def test_an_answer_is_not_served_past_its_ttl_and_a_zero_ttl_turns_the_cache_off() -> None:
    cache, compute = ReadCache(LocalKV(), ttl_s=0.05), Counting()
    cache.read(track_scope("t"), "head", (), Board, compute)
    time.sleep(0.1)
    assert cache.read(track_scope("t"), "head", (), Board, compute).version == 2
    off, compute = ReadCache(LocalKV(), ttl_s=0), Counting()
    assert [off.read(track_scope("t"), "head", (), Board, compute).version for _ in range(2)] == [1, 2]


def test_an_error_is_not_cached() -> None:
    cache, calls = ReadCache(LocalKV(), ttl_s=60), []

    def failing() -> Board:
        calls.append(1)
        raise LookupError("no head yet")

    for _ in range(2):
        with pytest.raises(LookupError):
            cache.read(track_scope("t"), "head", (), Board, failing)
    assert len(calls) == 2


def test_without_redis_a_maintenance_commit_in_another_process_reaches_the_servers_cache(tmp_path: Path) -> None:
    # Two stores, as two processes have: the server's, and a maintenance command's.
    server = ReadCache(LocalKV(), ttl_s=60, outside=OutsideChanges(tmp_path))
    command = ReadCache(LocalKV(), ttl_s=60, outside=OutsideChanges(tmp_path), announces=True)
    compute = Counting()
    read = lambda: server.read(track_scope("t"), "head", (), Board, compute)  # noqa: E731
    assert [read().version for _ in range(2)] == [1, 1]

    server.invalidate({"t"})  # the server's own commits stay in its process: no file is written
    assert not (tmp_path / OutsideChanges.FILE_NAME).exists()
    assert [read().version for _ in range(2)] == [2, 2]

    command.invalidate({"t"})
    assert [read().version for _ in range(2)] == [3, 3]
    command.invalidate({"u"})  # every scope starts afresh: the command's process knows no better
    command.invalidate({"u"})
    assert [read().version for _ in range(2)] == [4, 4]
    assert [p.name for p in tmp_path.iterdir()] == [OutsideChanges.FILE_NAME]  # no staged file left
