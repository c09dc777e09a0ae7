"""A worker asked to stop while it is still starting: it stops as it would at work, and says so."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.network import Network, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_worker_stopped_while_it_starts_takes_no_lease_and_says_it_stopped(network: Network, sig: int) -> None:
    network.start_coordinator(ARN_CPU_TINY_BUDGET_S="4")
    worker = network.start_worker("alice")
    # The home's lock is taken after torch's import and before the sandbox's self-tests: the
    # signal lands while the worker starts, before its daemon runs.
    lock = network.root / "worker-alice" / "worker.lock"
    wait_for(lock.exists, timeout_s=120, what="the worker to start", interval_s=0.02)

    worker.popen.send_signal(sig)

    assert worker.popen.wait(timeout=120) == 0, worker.output()
    output = worker.output()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "stopping: asked to stop while starting; no lease will be taken" in output, output
    assert output.rstrip().splitlines()[-1].endswith("worker stopped: 0 leases, 0 runs (0 ok, 0 crashed, 0 rejected),"
                                                        " 0 released, 0 lost, 0 results delivered, 0 refused"), output
    assert network.query("select count(*) from leases") == [(0,)]
