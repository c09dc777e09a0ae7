"""Where the test suite finds PostgreSQL and Redis, and what happens when they are missing.

With ARN_REQUIRE_SERVICES=1 (CI sets it) a missing service fails the run. Otherwise the tests that
need it are skipped with the reason, so a laptop without PostgreSQL still runs the rest.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_URL = os.environ.get("ARN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ARN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = os.environ.get("ARN_REQUIRE_SERVICES", "") == "1"


def _unavailable(what: str, url: str, exc: Exception) -> None:
    message = f"{what} at {url} is not reachable ({type(exc).__name__}: {exc})"
    if REQUIRED:
        pytest.fail(f"{message}; ARN_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
    pytest.skip(f"{message}; set ARN_TEST_POSTGRES_URL / ARN_TEST_REDIS_URL to run these tests")


def require_postgres() -> str:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as exc:
        _unavailable("PostgreSQL", POSTGRES_URL, exc)
    return POSTGRES_URL


def require_redis() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:
        _unavailable("Redis", REDIS_URL, exc)
    return REDIS_URL


class RedisProcess:
    """A private `redis-server` on a free port, for tests that stop and restart Redis (the shared
    one at ARN_TEST_REDIS_URL must stay up for the rest of the suite)."""

    def __init__(self) -> None:
        import shutil
        import socket

        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server", "PATH", FileNotFoundError("redis-server is not installed"))
        self._binary = str(binary)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        argv = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


@functools.cache
def _migration_script() -> str:
    """Every migration as one SQL script (Alembic's offline mode), rendered once per test run:
    replaying it makes a migrated schema in one round trip. tests/api/test_migrations.py runs the
    migrations themselves."""
    from alembic import command

    from coordinator.migrate import alembic_config

    config = alembic_config(POSTGRES_URL)
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    return config.output_buffer.getvalue()


@contextlib.contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """A private, migrated schema in the real PostgreSQL, dropped afterwards: its URL."""
    import sqlalchemy

    base = require_postgres()
    schema = f"arn_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base, poolclass=sqlalchemy.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'create schema "{schema}"'))
        connection.exec_driver_sql(f'set local search_path to "{schema}"')
        connection.exec_driver_sql(_migration_script().replace("BEGIN;", "").replace("COMMIT;", ""))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'drop schema "{schema}" cascade'))
        admin.dispose()
