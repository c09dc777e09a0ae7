from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.network import Network
from tests.services import fresh_postgres_schema


def pytest_configure(config: pytest.Config) -> None:
    """Coordinators started by the tests (in process or as `coordinator serve`) build the built-in
    track's data once per run and copy it after (coordinator/trackdata/cache.py)."""
    import os
    import tempfile

    cache = tempfile.mkdtemp(prefix="arn-trackdata-")
    os.environ["ARN_TRACKDATA_CACHE_DIR"] = cache
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per test run, for tests to copy."""
    from coordinator.migrate import upgrade

    path = tmp_path_factory.mktemp("migrated") / "coordinator.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a private schema in the real PostgreSQL."""
    if request.param == "sqlite":
        shutil.copyfile(migrated_sqlite, tmp_path / "coordinator.sqlite3")
        yield f"sqlite:///{tmp_path / 'coordinator.sqlite3'}"
        return
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """Real coordinator and worker processes under the test's folder (tests/e2e/network.py); on a
    failure their logs are printed, and they are always stopped."""
    net = Network(tmp_path)
    try:
        yield net
    except BaseException:
        print(net.logs())
        raise
    finally:
        net.stop_all()
