"""Engine and session factory. One engine per app; sessions are per request or per job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# Connections beyond the pool for work outside admitted requests: the reaper, opening event streams.
POOL_OVERFLOW = 8
# A request that still finds no connection gives up after this long (the client gets a 503).
POOL_TIMEOUT_S = 10


def make_engine(url: str, *, pool_size: int = 16) -> Engine:
    pooling = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW, "pool_timeout": POOL_TIMEOUT_S}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pooling)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the leaderboard read while a result is being written; foreign keys are off
            # by default in SQLite and we rely on them.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **pooling)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
