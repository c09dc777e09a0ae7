"""The hot reads (track list and detail, leaderboard, head, research log, variant detail, and the
rendered global and track pages) served between changes from the key-value store
(coordinator/kv.py: Redis across replicas, in-process in the embedded default), and invalidated
on every replica by the commit that changes them.

- Each track has a **generation**, a counter in the store, and so does the list of all tracks. A
  SQLAlchemy session hook (`watch_commits`) notes every track whose variants, runs or own row a
  transaction wrote, and bumps their generations once it has committed; no write path can forget
  to invalidate. Bulk UPDATEs are not seen by the hook: the services only issue them (the head's
  compare-and-swap, the noise history) beside a change to one of the track's variants.
- Leases and heartbeats change none of the API's reads, and do not invalidate them. The pages,
  which count a track's active workers, have scopes of their own, which each lease handed out
  bumps too (`note_activity`). A page's relative figures (experiments in the last 24 h) may
  be up to `ttl_s` old.
- An answer is cached with the generation read *before* the database was, and served only while
  that is still the generation. A change that commits during the read bumps the generation after
  its commit, so what the read saw is never served past it, on any replica.
- Entries also expire after `ttl_s`, which bounds how stale an answer can be if an invalidation is
  lost (Redis unreachable at the moment of a commit, then back with its old entries).
- When the store is unreachable, every read goes to the database: slower, never wrong.
- Maintenance commands (`coordinator track create`, `coordinator variant requeue`, ...) invalidate
  too (`invalidating_session_factory`): through Redis, on every replica at once. Without Redis the
  command's process cannot reach the server's store, so it replaces a small file in the data
  directory after its commit (`OutsideChanges`); the server looks at that file's identity before
  each cached read (one stat), and a new identity starts every scope afresh. (Replicas, which
  `coordinator serve --workers N` needs Redis for, share Redis, not the file.)
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from coordinator.config import Settings
from coordinator.db import make_engine, make_session_factory
from coordinator.kv import KeyValue, LocalKV, make_kv
from coordinator.models import Lease, Run, Track, Variant

M = TypeVar("M", bound=BaseModel)

ALL_TRACKS = "tracks"  # the scope of reads over every track
ALL_PAGES = "pages"  # the pages over every track (the global leaderboard)
_CHANGED = "arn_changed_tracks"  # session.info key: tracks this transaction wrote


def track_scope(track_id: str) -> str:
    return f"track:{track_id}"


def page_scope(track_id: str) -> str:
    """A track's pages: changed by what changes its API reads, and by its leases too."""
    return f"page:{track_id}"


class OutsideChanges:
    """Without Redis, the word a maintenance command's process leaves for the server's: a file in
    the data directory, replaced (never rewritten in place) after each of the command's commits, so
    that its identity (inode, change time) is new each time."""

    FILE_NAME = "read-cache.epoch"

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / self.FILE_NAME

    def token(self) -> str:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return "0"
        return f"{found.st_ino}.{found.st_ctime_ns}.{found.st_mtime_ns}"

    def announce(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(f".{self.FILE_NAME}.{os.getpid()}")
        staged.write_text(str(time.time_ns()))
        os.replace(staged, self.path)


class ReadCache:
    def __init__(
        self, kv: KeyValue, *, ttl_s: float, outside: OutsideChanges | None = None, announces: bool = False
    ) -> None:
        """`outside`: where changes committed by other processes are announced (no Redis);
        `announces`: this process's commits announce there (a maintenance command's do)."""
        self._kv, self._ttl_s = kv, ttl_s
        self._outside, self._announces = outside, announces
        self.hits = self.misses = 0  # this process's, for the metrics and the tests

    def read(self, scope: str, what: str, params: Any, model: type[M], compute: Callable[[], M]) -> M:
        """`compute()`, or the answer it gave for the same `what` and `params` since the scope last
        changed."""
        key, found = self._lookup(scope, what, params)
        if found is not None and found[1] is not None:
            return model.model_validate_json(found[1])
        answer = compute()
        self._keep(key, found, answer.model_dump_json())
        return answer

    def read_text(self, scope: str, what: str, params: Any, compute: Callable[[], str]) -> str:
        """`read` for text: a rendered page."""
        key, found = self._lookup(scope, what, params)
        if found is not None and found[1] is not None:
            return found[1]
        answer = compute()
        self._keep(key, found, answer)
        return answer

    def invalidate(self, track_ids: set[str]) -> None:
        if not track_ids:
            return
        scopes = [ALL_TRACKS, ALL_PAGES]
        for track_id in sorted(track_ids):
            scopes += [track_scope(track_id), page_scope(track_id)]
        self._kv.bump(self._in_epoch(*scopes))
        if self._outside is not None and self._announces:
            self._outside.announce()

    def note_activity(self, track_id: str) -> None:
        """A lease was handed out: the pages (which count active workers) change, the API's reads
        do not."""
        self._kv.bump(self._in_epoch(ALL_PAGES, page_scope(track_id)))

    def _lookup(self, scope: str, what: str, params: Any) -> tuple[str, tuple[int, str | None] | None]:
        [scope] = self._in_epoch(scope)
        key = f"{scope}:{what}:{hashlib.sha256(repr(params).encode()).hexdigest()[:24]}"
        found = self._kv.cached(scope, key) if self._ttl_s > 0 else None
        if found is not None and found[1] is not None:
            self.hits += 1
        else:
            self.misses += 1
        return key, found

    def _keep(self, key: str, found: tuple[int, str | None] | None, value: str) -> None:
        if found is not None:  # None: the store is off or unreachable, and nothing is kept
            self._kv.store(key, found[0], value, ttl_s=self._ttl_s)

    def _in_epoch(self, *scopes: str) -> list[str]:
        """The scopes within the current outside epoch: a change announced from outside makes
        every scope a new one, with nothing cached under it."""
        if self._outside is None:
            return list(scopes)
        token = self._outside.token()
        return [f"{scope}@{token}" for scope in scopes]


def make_read_cache(kv: KeyValue, settings: Settings, *, announces: bool = False) -> ReadCache:
    """The read cache over `kv`; an in-process store also hears of (or, `announces`, tells of)
    changes committed by other processes on the same data directory."""
    outside = OutsideChanges(settings.data_dir) if isinstance(kv, LocalKV) else None
    return ReadCache(kv, ttl_s=settings.read_cache_ttl_s, outside=outside, announces=announces)


def _touched_tracks(session: Session) -> set[str]:
    tracks: set[str] = set()
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, Track):
            tracks.add(row.id)
        elif isinstance(row, Variant) and row.track_id is not None:
            tracks.add(row.track_id)
        elif isinstance(row, Run):  # its lease is in the session already: the result path loaded it
            lease = session.get(Lease, row.lease_id)
            if lease is not None:
                tracks.add(lease.track_id)
    return tracks


def watch_commits(session_factory: sessionmaker[Session], cache: ReadCache) -> None:
    """Invalidate, after each commit, the tracks whose rows the transaction wrote."""

    @event.listens_for(session_factory, "before_flush")
    def note(session: Session, _context: Any, _instances: Any) -> None:
        session.info.setdefault(_CHANGED, set()).update(_touched_tracks(session))

    @event.listens_for(session_factory, "after_commit")
    def bump(session: Session) -> None:
        changed = session.info.pop(_CHANGED, set())
        cache.invalidate(changed)

    @event.listens_for(session_factory, "after_rollback")
    def forget(session: Session) -> None:
        session.info.pop(_CHANGED, None)


def invalidating_session_factory(settings: Settings) -> sessionmaker[Session]:
    """A session factory for a maintenance command, whose commits invalidate the servers' caches."""
    factory = make_session_factory(make_engine(settings.resolved_database_url))
    kv = make_kv(settings.redis_url, prefix=settings.redis_prefix)
    watch_commits(factory, make_read_cache(kv, settings, announces=True))
    return factory
