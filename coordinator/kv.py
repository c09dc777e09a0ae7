"""The Redis roles behind small interfaces: rate limits and event fan-out.

`RedisKV` is for production, where several coordinator replicas share one Redis. `LocalKV` is the
embedded stand-in for a single process. Both give the same answers for the same calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

import redis
import redis.asyncio

log = logging.getLogger(__name__)
T = TypeVar("T")


class KeyValue(Protocol):
    def hit(self, key: str, *, limit: int, window_s: int) -> bool:
        """Count one hit on `key` in the current window; False once `limit` is exceeded."""

    def publish(self, channel: str, event: dict[str, Any]) -> None: ...

    def listen(self, channel: str, *, timeout_s: float) -> AsyncIterator[dict[str, Any] | None]:
        """Yield events as they come; yield None every `timeout_s` of quiet (for keep-alives).

        Asynchronous, so an open stream holds no request thread while it waits.
        """

    def ping(self) -> bool: ...


def window_reset_s(window_s: int, *, now: float | None = None) -> int:
    """Whole seconds until the current rate-limit window ends: a refused client's Retry-After.

    Both stores count in fixed windows aligned to the epoch, so every replica agrees on it.
    """
    now = time.time() if now is None else now
    return max(1, math.ceil(window_s - now % window_s))


class LocalKV:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}
        self._subscribers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}

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

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(channel, []))
        for deliver in subscribers:
            with contextlib.suppress(RuntimeError):  # its event loop has closed: a stream being torn down
                deliver(event)

    async def listen(self, channel: str, *, timeout_s: float) -> AsyncIterator[dict[str, Any] | None]:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

        def deliver(event: dict[str, Any]) -> None:  # from any thread; a full inbox drops the event
            loop.call_soon_threadsafe(lambda: None if inbox.full() else inbox.put_nowait(event))

        with self._lock:
            self._subscribers.setdefault(channel, []).append(deliver)
        try:
            while True:
                try:
                    yield await asyncio.wait_for(inbox.get(), timeout=timeout_s)
                except TimeoutError:
                    yield None
        finally:
            with self._lock:
                self._subscribers[channel].remove(deliver)

    def ping(self) -> bool:
        return True


class RedisKV:
    """The Redis roles for replicas that share one Redis.

    Redis is a helper, not a store of record: when it is unreachable, the coordinator keeps
    leasing and accepting results. Rate limits let requests through (fail open), events are
    dropped, and event streams send keep-alives and subscribe again. The outage is
    logged once, and its end once; while it lasts, Redis is tried again every `retry_s`, so a
    request pays a failed call's timeout at most that often.
    """

    def __init__(self, url: str, *, prefix: str = "arn:", retry_s: float = 5.0) -> None:
        self._url = url
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1
        )
        self._prefix = prefix
        self._retry_s = retry_s
        self._retry_at = 0.0  # monotonic time before which Redis is not tried (during an outage)
        self._down = False

    def _call(self, what: str, call: Callable[[], T], fallback: T) -> T:
        if self._down and time.monotonic() < self._retry_at:
            return fallback
        try:
            result = call()
        except redis.RedisError as exc:
            if not self._down:
                log.warning(
                    "Redis is unreachable (%s: %s); leasing and results go on, rate limits let requests "
                    "through and live events pause until it is back", what, exc,
                )
            self._down, self._retry_at = True, time.monotonic() + self._retry_s
            return fallback
        if self._down:
            log.warning("Redis is reachable again; rate limits and live events resume")
            self._down = False
        return result

    def hit(self, key: str, *, limit: int, window_s: int) -> bool:
        bucket = f"{self._prefix}rate:{key}:{int(time.time() // window_s)}"

        def count() -> int:
            pipe = self._redis.pipeline()
            pipe.incr(bucket)
            pipe.expire(bucket, window_s * 2)
            hits, _ = pipe.execute()
            return int(hits)

        return self._call("rate limit", count, fallback=0) <= limit

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        self._call("events", lambda: self._redis.publish(f"{self._prefix}events:{channel}", json.dumps(event)), None)

    async def listen(self, channel: str, *, timeout_s: float) -> AsyncIterator[dict[str, Any] | None]:
        while True:
            # A subscription holds a connection of its own, on the stream's event loop.
            client = redis.asyncio.Redis.from_url(self._url, decode_responses=True, socket_connect_timeout=1)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(f"{self._prefix}events:{channel}")
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout_s)
                    yield json.loads(message["data"]) if message else None
            except (redis.RedisError, OSError):
                pass  # Redis went away: keep the page's stream alive and subscribe again
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()
                    await client.aclose()
            yield None
            await asyncio.sleep(timeout_s)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


def make_kv(redis_url: str | None, *, prefix: str = "arn:") -> KeyValue:
    return RedisKV(redis_url, prefix=prefix) if redis_url else LocalKV()
