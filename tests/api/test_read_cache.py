"""Hot reads come from the cache between changes, and a change shows at once: on this replica, and
through Redis on every other replica sharing the database."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.kv import RedisKV
from coordinator.main import create_app
from coordinator.models import Variant
from coordinator.services.tracks import TrackParams
from tests.api.conftest import TRACK, Coordinator, FakeClock, Worker, add_track, calibrate
from tests.services import fresh_postgres_schema, require_redis

READS = [f"/v1/tracks/{TRACK}/leaderboard", f"/v1/tracks/{TRACK}/head", f"/v1/tracks/{TRACK}/log", f"/v1/tracks/{TRACK}",
         "/v1/tracks"]  # fmt: skip


def promote_one(coordinator: Coordinator) -> str:
    """Alice claims a gain over the calibrated baseline and bob verifies it: a new head."""
    alice = Worker(coordinator, "a1", "alice").register()
    bob = Worker(coordinator, "b1", "bob").register()
    claim = alice.run(alice.lease(), 0.90)
    assert bob.run(bob.lease(), 0.91)["variant_status"] == "verified"
    return str(claim["variant_hash"])


def test_reads_are_served_from_the_cache_until_a_result_changes_them(coordinator: Coordinator) -> None:
    cache = coordinator.client.app.state.arn.read_cache  # type: ignore[attr-defined]
    calibrate(coordinator, [1.00, 1.00])
    before = {path: coordinator.client.get(path).json() for path in READS}
    misses = cache.misses
    assert {path: coordinator.client.get(path).json() for path in READS} == before
    assert cache.misses == misses  # all five answered from the cache

    new_head = promote_one(coordinator)
    board = coordinator.client.get(f"/v1/tracks/{TRACK}/leaderboard").json()
    assert board["entries"][0]["hash"] == new_head
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"] == new_head
    assert new_head in [e["hash"] for e in coordinator.client.get(f"/v1/tracks/{TRACK}/log").json()["entries"]]
    assert coordinator.client.get("/v1/tracks").json()[0]["head_hash"] == new_head


def test_a_change_committed_outside_a_request_invalidates_too(coordinator: Coordinator) -> None:
    assert coordinator.client.get(f"/v1/tracks/{TRACK}").json()["brief"] == "Make val_bpb go down."
    with coordinator.session() as session:  # as a maintenance command or the reaper writes
        from coordinator.models import Track

        session.get(Track, TRACK).brief = "Make it faster."
        session.commit()
    assert coordinator.client.get(f"/v1/tracks/{TRACK}").json()["brief"] == "Make it faster."


@pytest.mark.postgres
@pytest.mark.redis
def test_a_result_on_one_replica_invalidates_the_cached_reads_of_another(tmp_path: Path, track_params: TrackParams) -> None:
    prefix = f"arn-test-{uuid.uuid4().hex[:8]}:"
    with fresh_postgres_schema() as database_url:
        clock = FakeClock()

        def replica(name: str) -> TestClient:
            settings = Settings(data_dir=tmp_path / name, database_url=database_url, create_builtin_tracks=False,
                                redis_url=require_redis(), redis_prefix=prefix, read_cache_ttl_s=600)  # fmt: skip
            return TestClient(create_app(settings, clock=clock, run_reaper=False))

        with replica("a") as a, replica("b") as b:
            writer = Coordinator(client=a, clock=clock, settings=a.app.state.arn.settings)  # type: ignore[attr-defined]
            add_track(writer, track_params)
            calibrate(writer, [1.00, 1.00])
            stale = {path: b.get(path).json() for path in READS}  # cached on b
            assert {path: b.get(path).json() for path in READS} == stale
            assert isinstance(b.app.state.arn.kv, RedisKV)  # type: ignore[attr-defined]

            new_head = promote_one(writer)  # every write through replica a

            assert stale[f"/v1/tracks/{TRACK}/head"]["hash"] != new_head
            assert b.get(f"/v1/tracks/{TRACK}/leaderboard").json()["entries"][0]["hash"] == new_head
            assert b.get(f"/v1/tracks/{TRACK}/head").json()["hash"] == new_head
            assert a.get(f"/v1/tracks/{TRACK}/log").json() == b.get(f"/v1/tracks/{TRACK}/log").json()
            with writer.session() as session:
                assert session.query(Variant).filter_by(hash=new_head).one().status == "verified"


def test_a_cached_variant_shows_its_verification_at_once(coordinator: Coordinator) -> None:
    cache = coordinator.client.app.state.arn.read_cache  # type: ignore[attr-defined]
    calibrate(coordinator, [1.00, 1.00])
    alice = Worker(coordinator, "a1", "alice").register()
    bob = Worker(coordinator, "b1", "bob").register()
    claimed = alice.run(alice.lease(), 0.90)["variant_hash"]
    paths = [f"/v1/variants/{claimed}?track_id={TRACK}", f"/v1/variants/{claimed}"]
    assert [coordinator.client.get(path).json()["status"] for path in paths] == ["candidate", "candidate"]
    misses = cache.misses
    assert [coordinator.client.get(path).json()["status"] for path in paths] == ["candidate", "candidate"]
    assert cache.misses == misses

    assert bob.run(bob.lease(), 0.91)["variant_status"] == "verified"
    assert [coordinator.client.get(path).json()["status"] for path in paths] == ["verified", "verified"]
    assert coordinator.client.get("/v1/variants/" + "0" * 64).json()["code"] == "unknown_variant"


PAGES = ["/", f"/tracks/{TRACK}", f"/tracks/{TRACK}/fragment"]


def active_workers(html: str) -> int:
    """The figure before "active workers" on a track's live part (or a row of the global page)."""
    import re

    found = re.search(r"<b>(\d+)</b><span>active workers</span>", html)
    assert found is not None, html[:500]
    return int(found.group(1))


def test_pages_are_rendered_once_per_change_and_a_lease_changes_them_but_not_the_apis_reads(
    coordinator: Coordinator,
) -> None:
    cache = coordinator.client.app.state.arn.read_cache  # type: ignore[attr-defined]
    calibrate(coordinator, [1.00, 1.00])
    first = {path: coordinator.client.get(path).text for path in PAGES}
    hits, misses = cache.hits, cache.misses
    assert {path: coordinator.client.get(path).text for path in PAGES} == first
    assert (cache.hits, cache.misses) == (hits + 3, misses)  # three pages, none rendered again

    board = coordinator.client.get(f"/v1/tracks/{TRACK}/leaderboard").json()
    misses = cache.misses
    alice = Worker(coordinator, "a1", "alice").register()
    lease = alice.lease()
    assert lease is not None and lease["kind"] == "explore"
    fragment = coordinator.client.get(f"/tracks/{TRACK}/fragment").text
    assert active_workers(fragment) == active_workers(first[f"/tracks/{TRACK}/fragment"]) + 1
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/leaderboard").json() == board
    assert cache.misses == misses + 1  # the fragment, rendered again; the leaderboard, not read again

    new_head = Worker(coordinator, "b1", "bob").register()
    alice.run(lease, 0.90)
    assert new_head.run(new_head.lease(), 0.91)["variant_status"] == "verified"
    head = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"]
    assert all(head[:10] in coordinator.client.get(path).text for path in PAGES)


def test_a_page_is_kept_apart_for_each_address_it_was_asked_at(coordinator: Coordinator) -> None:
    # The track page shows how to clone the track's lineage, from the address the viewer used.
    calibrate(coordinator, [1.00, 1.00])
    inside = coordinator.client.get(f"/tracks/{TRACK}", headers={"host": "coordinator.internal"}).text
    outside = coordinator.client.get(f"/tracks/{TRACK}", headers={"host": "research.example.org"}).text
    assert "http://coordinator.internal/" in inside and "coordinator.internal" not in outside
    assert "http://research.example.org/" in outside
