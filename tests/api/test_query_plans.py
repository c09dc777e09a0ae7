"""Every statement the hot paths and the read endpoints send to PostgreSQL can be answered from an
index: none needs a full scan of runs, leases, variants or workers, the tables that grow with the
network. (How long those reads take with a million runs is measured by bench/read_scale.py.)

The statements are recorded as the real app runs them, then explained by PostgreSQL with
sequential scans priced out (`enable_seqscan = off`): a plan that still scans a table whole has no
index to use instead. Walking a whole index (an index scan with no condition) counts as a full
scan too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from coordinator.services.leases import expire_overdue
from tests.api.conftest import TRACK, Coordinator, calibrate
from tests.services import fresh_postgres_schema

pytestmark = pytest.mark.postgres

GROWING = {"runs", "leases", "variants", "workers", "accounts"}


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_postgres_schema() as url:
        yield url


class Recorder:
    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.on = False

    def __call__(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if self.on and statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            self.statements.append((statement, parameters))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    event.listen(Engine, "before_cursor_execute", recorder)
    try:
        yield recorder
    finally:
        event.remove(Engine, "before_cursor_execute", recorder)


def _scans(plan: dict[str, Any]) -> Iterator[str]:
    """The tables a plan reads whole: by a sequential scan, or by walking a whole index."""
    whole_index = plan.get("Node Type") in ("Index Scan", "Index Only Scan") and "Index Cond" not in plan
    if plan.get("Node Type") == "Seq Scan" or whole_index:
        yield str(plan.get("Relation Name"))
    for child in plan.get("Plans", []):
        yield from _scans(child)


def _full_scans(database_url: str, statements: list[tuple[str, Any]]) -> dict[str, set[str]]:
    """The growing tables each statement would scan whole, by statement."""
    found: dict[str, set[str]] = {}
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("set enable_seqscan = off")
            raw = connection.connection.driver_connection
            assert raw is not None
            for statement, parameters in statements:
                with raw.cursor() as cursor:
                    cursor.execute(f"explain (format json) {statement}", parameters)
                    row = cursor.fetchone()
                assert row is not None
                plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
                tables = set(_scans(plan[0]["Plan"])) & GROWING
                if tables:
                    found[" ".join(statement.split())[:300]] = tables
            connection.rollback()
    finally:
        engine.dispose()
    return found


def test_the_hot_paths_and_the_reads_never_scan_a_growing_table_whole(
    coordinator: Coordinator, make_worker, recorder: Recorder, database_url: str
) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.0, 1.0])
    claim = alice.run(alice.lease(), 0.9, hypothesis="a better idea")
    bob.run(bob.lease(), 0.9)

    recorder.on = True
    # The hot path: a lease, its heartbeats and its result, by a worker and a verifier.
    lease = carol.lease()
    assert lease is not None
    carol.post(f"/v1/leases/{lease['id']}/heartbeat", {})
    carol.run(lease, 0.95, hypothesis="another idea")
    explore = alice.lease()
    assert explore is not None
    alice.post(f"/v1/leases/{explore['id']}/heartbeat", {})
    alice.run(explore, 1.2)
    # The reads agents, volunteers and maintainers make.
    client = coordinator.client
    for path in (
        "/v1/info", "/v1/tracks", f"/v1/tracks/{TRACK}", f"/v1/tracks/{TRACK}/leaderboard", f"/v1/tracks/{TRACK}/head",
        f"/v1/tracks/{TRACK}/log", f"/v1/tracks/{TRACK}/log?status=verified", f"/v1/variants/{claim['variant_hash']}",
        f"/v1/tracks/{TRACK}/lineage", "/", f"/tracks/{TRACK}", f"/variants/{claim['variant_hash']}", "/accounts/alice",
    ):  # fmt: skip
        assert client.get(path).status_code == 200, path
    first = client.get(f"/v1/tracks/{TRACK}/log?limit=1").json()
    assert client.get(f"/v1/tracks/{TRACK}/log?limit=1&cursor={first['next_cursor']}").status_code == 200
    # The reaper's sweep.
    with coordinator.session() as session:
        expire_overdue(session, now=coordinator.clock())
        session.commit()
    recorder.on = False

    assert len(recorder.statements) > 30  # the recording saw the app's queries
    assert _full_scans(database_url, recorder.statements) == {}


def test_the_check_finds_a_query_no_index_can_serve(database_url: str) -> None:
    """The check itself: a filter on an unindexed column, and a walk of a whole index, are full
    scans, and are reported; a lookup by an indexed column is not."""
    found = _full_scans(database_url, [
        ("select id from runs where reason = %(reason)s", {"reason": "x"}),
        ("select id from leases order by id", {}),
        ("select id from runs where lease_id = %(lease)s", {"lease": "x"}),
    ])  # fmt: skip
    assert list(found.values()) == [{"runs"}, {"leases"}]
