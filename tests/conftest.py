from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.network import Network
from tests.services import fresh_postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a private schema in the real PostgreSQL."""
    from coordinator.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'coordinator.sqlite3'}"
        upgrade(url)
        yield url
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
