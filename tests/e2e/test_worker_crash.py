"""A worker killed with SIGKILL: the lease it was training expires and its work is handed out
again, and a result it had queued but not yet delivered arrives, once, when it starts again.

Killed mid-training first, so its lease is abandoned. Started again behind a TCP proxy, which is cut
while it trains its next lease, so that lease's signed result stays in the outbox; it is killed again
while it waits for the network, and the third start delivers the result.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.network import Network, Process, wait_for
from tests.tcp_proxy import SeveringProxy

pytestmark = pytest.mark.slow

SETTINGS = {
    "ARN_CPU_TINY_BUDGET_S": "6",
    "ARN_CPU_TINY_QUORUM": "1",
    # Three calibration runs of the baseline, at most two per account: alice's first two leases
    # both calibrate it, so the abandoned one must be handed out again for the baseline to get its
    # three.
    "ARN_CPU_TINY_CALIBRATION_RUNS": "3",
    "ARN_CPU_TINY_TOLERANCE": "0.5",
    "ARN_HEARTBEAT_INTERVAL_S": "1",
    # A lease outlives its last heartbeat by the budget plus this: long enough for the restarted
    # worker to deliver the queued result, short enough for the test to see the abandoned lease expire.
    "ARN_LEASE_SLACK_S": "30",
    "ARN_REAPER_INTERVAL_S": "1",
}


def active_leases(network: Network, worker_name: str) -> list[tuple[str, str, int]]:
    return [
        (row[0], row[1], row[2])
        for row in network.query(
            "select l.id, l.kind, l.variant_id from leases l join workers w on w.id = l.worker_id"
            " where w.name = ? and l.state = 'active' order by l.created_at",
            worker_name,
        )
    ]


def test_a_worker_killed_mid_training_loses_its_lease_and_delivers_its_outbox_on_restart(network: Network) -> None:
    network.start_coordinator(**SETTINGS)
    proxy = SeveringProxy(("127.0.0.1", network.port))
    through_proxy = f"http://127.0.0.1:{proxy.port}"
    outbox = network.root / "worker-alice" / "outbox"
    try:
        # Killed while it trains: the lease is abandoned, with nothing queued.
        worker = network.start_worker("alice")
        abandoned = wait_for(lambda: active_leases(network, "alice-cpu"), timeout_s=120, what="a first lease")[0]
        wait_for(lambda: "train" in worker.output().lower(), timeout_s=60, what="training to start", interval_s=0.2)
        kill(worker)
        assert not list(outbox.glob("*.json"))

        # Started again behind the proxy; the network goes while it trains: the result is queued.
        # Cut only once training has begun: before it, the worker still fetches what the lease needs.
        earlier_output = len(worker.output())
        worker = network.start_worker("alice", url=through_proxy)
        second = wait_for(
            lambda: [lease for lease in active_leases(network, "alice-cpu") if lease[0] != abandoned[0]],
            timeout_s=120, what="a second lease",
        )[0]
        wait_for(
            lambda: "train" in worker.output()[earlier_output:].lower(), timeout_s=120,
            what="the restarted worker to start training", interval_s=0.2,
        )
        proxy.sever()
        queued = outbox / f"{second[0]}.json"
        wait_for(queued.is_file, timeout_s=120, what="the second result in the outbox")
        kill(worker)  # while it waits for the network
        assert queued.is_file(), "a killed worker keeps what its outbox had"
        proxy.restore()

        # Started again, it delivers what it had, once; the abandoned lease is not its to finish.
        restarted = network.start_worker("alice", url=through_proxy)
        wait_for(lambda: not queued.exists(), timeout_s=120, what="the queued result to be delivered")
        assert network.query("select state from leases where id = ?", second[0]) == [("completed",)]
        assert network.query("select count(*) from runs where lease_id = ?", second[0]) == [(1,)]
        assert not any((outbox / "refused").glob("*.json"))  # taken, not refused

        # Nobody heartbeats the abandoned lease: it expires with nothing recorded, and its slot, a
        # calibration of the baseline, is handed out again and filled.
        assert abandoned[1:] == ("calibrate", second[2])
        wait_for(
            lambda: network.query("select state from leases where id = ?", abandoned[0]) == [("expired",)],
            timeout_s=120, what="the abandoned lease to expire",
        )
        network.start_worker("bob")
        calibrations = "select count(*) from runs where kind = 'calibrate' and variant_id = ? and status = 'ok'"
        wait_for(
            lambda: network.query(calibrations, abandoned[2]) == [(3,)],
            timeout_s=180, what="the abandoned calibration to be handed out again and done",
        )
        assert network.query("select count(*) from runs where lease_id = ?", abandoned[0]) == [(0,)]
        restarted.stop()
    finally:
        proxy.close()


def kill(worker: Process) -> None:
    """SIGKILL to the worker's whole process group: the worker, its trainer, everything it started."""
    os.killpg(worker.popen.pid, signal.SIGKILL)
    assert worker.popen.wait(timeout=10) == -signal.SIGKILL
