"""The Redis roles behind small interfaces: rate limits, event fan-out, and the hot-read cache's
generations and entries (coordinator/read_cache.py).

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
from collections.abc import AsyncIterator, Callable, Iterable
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

    def bump(self, scopes: Iterable[str]) -> None:
        """Count one change in each scope: cached answers computed before it are no longer served."""

    def cached(self, scope: str, key: str) -> tuple[int, str | None] | None:
        """(the scope's generation, the entry stored under `key` for exactly that generation, or
        None), in one round trip; None when the store cannot say (Redis down): read the database."""

    def store(self, key: str, generation: int, value: str, *, ttl_s: float) -> None:
        """Keep `value`, computed at `generation` (read before the database was), for ttl_s at most."""


def window_reset_s(window_s: int, *, now: float | None = None) -> int:
    """Whole seconds until the current rate-limit window ends: a refused client's Retry-After.

    Both stores count in fixed windows aligned to the epoch, so every replica agrees on it.
    """
    now = time.time() if now is None else now
    return max(1, math.ceil(window_s - now % window_s))


def _split_entry(entry: str | None, generation: int) -> str | None:
    """An entry is "<generation> <value>": its value when it was computed at `generation`."""
    if entry is None:
        return None
    stamp, _, value = entry.partition(" ")
    return value if stamp == str(generation) else None


class LocalKV:
    MAX_CACHED = 2048  # entries; the oldest go first

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}
        self._subscribers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._generations: dict[str, int] = {}
        self._cache: dict[str, tuple[float, str]] = {}  # key -> (expires at, monotonic; entry)

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

    def bump(self, scopes: Iterable[str]) -> None:
        with self._lock:
            for scope in scopes:
                self._generations[scope] = self._generations.get(scope, 0) + 1

    def cached(self, scope: str, key: str) -> tuple[int, str | None] | None:
        with self._lock:
            generation = self._generations.get(scope, 0)
            expires, entry = self._cache.get(key, (0.0, None))
        return generation, _split_entry(entry if expires > time.monotonic() else None, generation)

    def store(self, key: str, generation: int, value: str, *, ttl_s: float) -> None:
        with self._lock:
            self._cache.pop(key, None)  # re-inserted last: the dict's order is the age order
            self._cache[key] = (time.monotonic() + ttl_s, f"{generation} {value}")
            while len(self._cache) > self.MAX_CACHED:
                del self._cache[next(iter(self._cache))]


class RedisKV:
    """The Redis roles for replicas that share one Redis.

    Redis is a helper, not a store of record: when it is unreachable, the coordinator keeps
    leasing and accepting results. Rate limits let requests through (fail open), every read goes
    to the database (coordinator/read_cache.py), events are dropped, and event streams send
    keep-alives and subscribe again. The outage is
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
                    "through, reads come from the database and live events pause until it is back", what, exc,
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

    def bump(self, scopes: Iterable[str]) -> None:
        def incr() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for scope in scopes:
                pipe.incr(f"{self._prefix}gen:{scope}")
            pipe.execute()

        self._call("cache invalidation", incr, None)

    def cached(self, scope: str, key: str) -> tuple[int, str | None] | None:
        def read() -> tuple[int, str | None]:
            generation, entry = self._redis.mget(f"{self._prefix}gen:{scope}", f"{self._prefix}cache:{key}")
            current = int(generation or 0)
            return current, _split_entry(str(entry) if entry is not None else None, current)

        return self._call("cache", read, None)

    def store(self, key: str, generation: int, value: str, *, ttl_s: float) -> None:
        self._call(
            "cache",
            lambda: self._redis.set(f"{self._prefix}cache:{key}", f"{generation} {value}", px=max(1, int(ttl_s * 1000))),
            None,
        )


def make_kv(redis_url: str | None, *, prefix: str = "arn:") -> KeyValue:
    return RedisKV(redis_url, prefix=prefix) if redis_url else LocalKV()
