from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# Under pytest-xdist (`make test` runs two processes) the slow tests, which start servers and
# workers and time real training, run one after another in one process, so that no two of them
# compete for the machine; the rest share the other process. (xdist's own `xdist_group` mark does
# not reach its scheduler under pytest 9.2, so the scheduler below groups by module.)
SLOW_MODULES = ("tests/e2e/", "tests/browser/", "tests/unit/test_baseline.py", "tests/unit/test_worker_cli.py",
                "tests/unit/test_worker_run_cli.py")  # fmt: skip


def _serial_scope(nodeid: str) -> str:
    return "slow" if nodeid.startswith(SLOW_MODULES) else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class SlowTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _serial_scope(nodeid)

    return SlowTestsTogether(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every slow test is one the scheduler keeps in the serial group."""
    strays = [item.nodeid for item in items if item.get_closest_marker("slow") and _serial_scope(item.nodeid) != "slow"]
    if strays:
        raise pytest.UsageError(f"slow tests outside SLOW_MODULES (tests/conftest.py): {strays[:3]}")


@pytest.fixture(autouse=True)
def machine_share(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under xdist, a `whole_machine` test runs with no other test beside it: it loads the machine
    itself, to a level it chooses, and another process's tests would add to that load (and suffer
    from it). Every other test holds a shared lock; a whole-machine test takes it exclusively, after
    a turnstile that stops new shared holders from starving it."""
    if not hasattr(request.config, "workerinput"):
        yield  # one process: nothing runs beside any test
        return
    import fcntl

    shared_root = tmp_path_factory.getbasetemp().parent  # the run's folder, above each process's own
    exclusive = request.node.get_closest_marker("whole_machine") is not None
    with (shared_root / "machine.turnstile").open("a") as turnstile, (shared_root / "machine.lock").open("a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if not exclusive:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(turnstile, fcntl.LOCK_UN)


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
    failure their logs go into the report (pytest_runtest_makereport), and they are always stopped."""
    net = Network(tmp_path)
    try:
        yield net
    finally:
        net.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that ran a network reports its processes' logs: a fixture never sees the
    test's exception, so this is the one place that knows both."""
    report = yield
    network = getattr(item, "funcargs", {}).get("network")
    if report.failed and report.when == "call" and isinstance(network, Network):
        report.sections.append(("network logs", network.logs()))
    return report
