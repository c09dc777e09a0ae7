"""The Redis roles and their in-process stand-in answer alike (the Redis one on a real server)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from coordinator.kv import KeyValue, LocalKV, RedisKV
from tests.services import RedisProcess, require_redis


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def kv(request: pytest.FixtureRequest) -> Iterator[KeyValue]:
    if request.param == "local":
        yield LocalKV()
    else:
        yield RedisKV(require_redis(), prefix=f"arn-test-{uuid.uuid4().hex[:8]}:")


def test_rate_limit_allows_up_to_the_limit_per_window(kv: KeyValue) -> None:
    assert [kv.hit("worker:w1", limit=3, window_s=60) for _ in range(5)] == [True, True, True, False, False]
    assert kv.hit("worker:w2", limit=3, window_s=60) is True


def test_published_events_reach_listeners(kv: KeyValue) -> None:
    async def scenario() -> list[dict | None]:
        stream = kv.listen("track-a", timeout_s=0.2)
        first = await anext(stream)  # subscribes, then times out once
        # Published from another thread, as request handlers do, until the listener has it.
        publishing = threading.Event()

        def publish() -> None:
            while not publishing.wait(0.05):
                kv.publish("track-a", {"type": "result", "status": "verified"})

        thread = threading.Thread(target=publish)
        thread.start()
        try:
            event = None
            for _ in range(40):
                event = await anext(stream)
                if event is not None:
                    break
        finally:
            publishing.set()
            thread.join()
            await stream.aclose()
        return [first, event]

    assert asyncio.run(scenario()) == [None, {"type": "result", "status": "verified"}]
    assert kv.ping()


def test_a_closed_stream_stops_listening(kv: KeyValue) -> None:
    async def scenario() -> None:
        stream = kv.listen("track-b", timeout_s=0.05)
        assert await anext(stream) is None
        await stream.aclose()

    asyncio.run(scenario())
    kv.publish("track-b", {"type": "result"})  # nobody is left to deliver to, and nothing breaks


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_with_redis_down_limits_let_requests_through_and_nothing_raises(private_redis: RedisProcess) -> None:
    kv = RedisKV(private_redis.url, retry_s=60)
    private_redis.stop()

    assert [kv.hit("worker:w1", limit=1, window_s=60) for _ in range(3)] == [True, True, True]  # fail open
    kv.publish("track-a", {"type": "result"})
    kv.store("track:t:head", 0, "{}", ttl_s=60)
    kv.bump(["track:t"])
    assert kv.cached("track:t", "track:t:head") is None  # the cache cannot say: read the database
    assert kv.ping() is False


def test_after_redis_comes_back_its_roles_resume(private_redis: RedisProcess) -> None:
    kv = RedisKV(private_redis.url, retry_s=0.2)
    assert kv.hit("worker:w1", limit=1, window_s=60) is True
    private_redis.stop()
    assert kv.hit("worker:w1", limit=1, window_s=60) is True  # down: let through
    private_redis.start()  # an empty Redis, as after a restart without persistence
    time.sleep(0.3)  # the outage's retry interval

    assert [kv.hit("worker:w1", limit=1, window_s=60) for _ in range(2)] == [True, False]


def test_an_event_stream_survives_a_redis_restart(private_redis: RedisProcess) -> None:
    kv = RedisKV(private_redis.url)

    async def scenario() -> dict | None:
        stream = kv.listen("track-a", timeout_s=0.1)
        try:
            assert await anext(stream) is None  # subscribed
            private_redis.stop()
            assert await anext(stream) is None  # a keep-alive while Redis is away
            private_redis.start()
            for _ in range(100):  # it subscribes again, then gets what is published
                kv.publish("track-a", {"type": "result", "status": "verified"})
                event = await anext(stream)
                if event is not None:
                    return event
            return None
        finally:
            await stream.aclose()

    assert asyncio.run(scenario()) == {"type": "result", "status": "verified"}


def test_a_cached_entry_is_served_only_at_the_generation_it_was_computed_at(kv: KeyValue) -> None:
    found = kv.cached("track:t", "track:t:board")
    assert found == (0, None)
    kv.store("track:t:board", 0, '{"rank": 1}', ttl_s=60)
    assert kv.cached("track:t", "track:t:board") == (0, '{"rank": 1}')
    kv.bump(["tracks", "track:t"])
    assert kv.cached("track:t", "track:t:board") == (1, None)  # computed before the change: not served
    assert kv.cached("tracks", "tracks:list") == (1, None)
    assert kv.cached("track:u", "track:u:board") == (0, None)  # another track's generation is its own


def test_a_cached_entry_expires_after_its_ttl(kv: KeyValue) -> None:
    kv.store("track:t:head", 0, "{}", ttl_s=0.05)
    assert kv.cached("track:t", "track:t:head") == (0, "{}")
    time.sleep(0.1)
    assert kv.cached("track:t", "track:t:head") == (0, None)
