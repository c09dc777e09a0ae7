from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
