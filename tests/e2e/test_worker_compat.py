"""A worker older than the coordinator accepts stops at join with one line, and takes no lease."""

from __future__ import annotations

import pytest

from tests.e2e.network import Network, wait_for
from tests.e2e.test_network import SETTINGS
from worker import __version__
from worker.compat import EXIT_OUTDATED

pytestmark = pytest.mark.slow


def test_an_outdated_worker_stops_before_any_lease_with_an_upgrade_message(network: Network) -> None:
    network.start_coordinator(**SETTINGS, ARN_MIN_WORKER_VERSION="99.0")
    worker = network.start_worker("alice")

    wait_for(lambda: worker.popen.poll() is not None, timeout_s=120, what="the worker to exit")

    assert worker.popen.returncode == EXIT_OUTDATED, worker.output()
    errors = [line for line in worker.output().splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: upgrade the worker: {network.url} accepts worker 99.0 or newer, and this is worker {__version__}"
    ]
    assert "Traceback" not in worker.output()
    assert network.query("select count(*) from leases") == [(0,)]
    assert network.query("select count(*) from workers") == [(0,)]
