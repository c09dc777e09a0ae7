"""The Redis roles behind small interfaces: rate limits, presence and event fan-out.

`RedisKV` is for production, where several coordinator replicas share one Redis. `LocalKV` is the
embedded stand-in for a single process. Both give the same answers for the same calls.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import redis


class KeyValue(Protocol):
    def hit(self, key: str, *, limit: int, window_s: int) -> bool:
        """Count one hit on `key` in the current window; False once `limit` is exceeded."""

    def touch(self, key: str, *, ttl_s: int) -> None:
        """Record that `key` (a worker) was seen now; forgotten after ttl_s."""

    def last_seen(self, key: str) -> float | None:
        """Unix time `key` was last touched, or None if never or expired."""

    def publish(self, channel: str, event: dict[str, Any]) -> None: ...

    def subscribe(self, channel: str, *, timeout_s: float) -> Iterator[dict[str, Any] | None]:
        """Yield events as they come; yield None every `timeout_s` of quiet (for keep-alives)."""

    def ping(self) -> bool: ...


class LocalKV:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}
        self._seen: dict[str, tuple[float, float]] = {}
        self._subscribers: dict[str, list[queue.Queue[dict[str, Any]]]] = {}

    def hit(self, key: str, *, limit: int, window_s: int) -> bool:
        now = time.time()
        bucket = f"{key}:{int(now // window_s)}"
        with self._lock:
            count, _ = self._counters.get(bucket, (0, now))
            self._counters[bucket] = (count + 1, now)
            if len(self._counters) > 10_000:  # drop old windows
                horizon = now - 2 * window_s
                self._counters = {k: v for k, v in self._counters.items() if v[1] > horizon}
            return count + 1 <= limit

    def touch(self, key: str, *, ttl_s: int) -> None:
        now = time.time()
        with self._lock:
            self._seen[key] = (now, now + ttl_s)

    def last_seen(self, key: str) -> float | None:
        with self._lock:
            entry = self._seen.get(key)
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(channel, []))
        for subscriber in subscribers:
            subscriber.put(event)

    def subscribe(self, channel: str, *, timeout_s: float) -> Iterator[dict[str, Any] | None]:
        inbox: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        with self._lock:
            self._subscribers.setdefault(channel, []).append(inbox)
        try:
            while True:
                try:
                    yield inbox.get(timeout=timeout_s)
                except queue.Empty:
                    yield None
        finally:
            with self._lock:
                self._subscribers[channel].remove(inbox)

    def ping(self) -> bool:
        return True


class RedisKV:
    def __init__(self, url: str, *, prefix: str = "arn:") -> None:
        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self._prefix = prefix

    def hit(self, key: str, *, limit: int, window_s: int) -> bool:
        bucket = f"{self._prefix}rate:{key}:{int(time.time() // window_s)}"
        pipe = self._redis.pipeline()
        pipe.incr(bucket)
        pipe.expire(bucket, window_s * 2)
        count, _ = pipe.execute()
        return int(count) <= limit

    def touch(self, key: str, *, ttl_s: int) -> None:
        self._redis.set(f"{self._prefix}seen:{key}", repr(time.time()), ex=ttl_s)

    def last_seen(self, key: str) -> float | None:
        value = self._redis.get(f"{self._prefix}seen:{key}")
        return float(value) if value is not None else None

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        self._redis.publish(f"{self._prefix}events:{channel}", json.dumps(event))

    def subscribe(self, channel: str, *, timeout_s: float) -> Iterator[dict[str, Any] | None]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(f"{self._prefix}events:{channel}")
        try:
            while True:
                message = pubsub.get_message(timeout=timeout_s)
                yield json.loads(message["data"]) if message else None
        finally:
            pubsub.close()

    def ping(self) -> bool:
        return bool(self._redis.ping())


def make_kv(redis_url: str | None) -> KeyValue:
    return RedisKV(redis_url) if redis_url else LocalKV()
