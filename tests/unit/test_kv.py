"""The Redis roles and their in-process stand-in answer alike (the Redis one on a real server)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from coordinator.kv import KeyValue, LocalKV, RedisKV
from tests.services import require_redis


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def kv(request: pytest.FixtureRequest) -> Iterator[KeyValue]:
    if request.param == "local":
        yield LocalKV()
    else:
        yield RedisKV(require_redis(), prefix=f"arn-test-{uuid.uuid4().hex[:8]}:")


def test_rate_limit_allows_up_to_the_limit_per_window(kv: KeyValue) -> None:
    assert [kv.hit("worker:w1", limit=3, window_s=60) for _ in range(5)] == [True, True, True, False, False]
    assert kv.hit("worker:w2", limit=3, window_s=60) is True


def test_presence_remembers_when_a_worker_was_last_seen(kv: KeyValue) -> None:
    assert kv.last_seen("w1") is None
    kv.touch("w1", ttl_s=60)
    assert kv.last_seen("w1") is not None


def test_published_events_reach_subscribers(kv: KeyValue) -> None:
    stream = kv.subscribe("track-a", timeout_s=0.2)
    received: list[dict] = []
    ready = threading.Event()

    def listen() -> None:
        ready.set()
        for event in stream:
            if event is not None:
                received.append(event)
                return

    first = next(stream)  # subscribes, then times out once
    assert first is None
    thread = threading.Thread(target=listen)
    thread.start()
    ready.wait()
    for _ in range(20):
        kv.publish("track-a", {"type": "result", "status": "verified"})
        thread.join(timeout=0.2)
        if not thread.is_alive():
            break
    assert received == [{"type": "result", "status": "verified"}]
    assert kv.ping()
