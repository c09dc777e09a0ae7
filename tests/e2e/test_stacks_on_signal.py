"""`kill -USR1` on a coordinator or a worker writes where each of its threads stands to its log,
and it goes on serving: what an operator reads when one seems hung (shared/stacks.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.network import Network, Process, wait_for

pytestmark = pytest.mark.slow


def test_a_coordinator_and_a_worker_dump_their_threads_stacks_on_sigusr1_and_go_on(network: Network) -> None:
    coordinator = network.start_coordinator(ARN_CPU_TINY_BUDGET_S="4")
    worker = network.start_worker("alice")
    wait_for(lambda: network.query("select count(*) from leases")[0][0], timeout_s=120, what="alice's first lease")

    for process, own_code in ((coordinator, "coordinator/services/reaper.py"), (worker, "worker/daemon.py")):
        assert process.request_stacks()

        def dumped(process: Process = process, own_code: str = own_code) -> str | None:
            stacks = process.dumped_stacks()
            return stacks if own_code in stacks else None

        stacks = wait_for(dumped, timeout_s=10, what=f"{process.name}'s stacks")
        assert "thread(s), innermost first" in stacks
        assert process.popen.poll() is None, f"{process.name} exited on SIGUSR1"

    assert httpx.get(f"{network.url}/v1/info", timeout=10).status_code == 200
    # The lease alice held when she was asked is finished and its result delivered.
    wait_for(lambda: network.query("select count(*) from runs")[0][0], timeout_s=120, what="alice's first result")
