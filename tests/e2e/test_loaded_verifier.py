"""A verifier whose machine is busy does not get an honest candidate rejected: it trains the
candidate and the head back to back under the same load, so the load cancels out of the pair."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.hashing import variant_hash
from tests.e2e.network import Network, wait_for

# It makes its own load: nothing else may run beside it (tests/conftest.py, machine_share).
pytestmark = [pytest.mark.slow, pytest.mark.whole_machine]

BASELINE = Path(__file__).resolve().parents[2] / "baseline" / "train.py"
SETTINGS = {
    "ARN_CPU_TINY_BUDGET_S": "4",
    "ARN_CPU_TINY_QUORUM": "1",
    "ARN_CPU_TINY_CALIBRATION_RUNS": "1",
    "ARN_CPU_TINY_NOISE_SIGMA": "0.05",  # at a 4 s budget on a shared 2-core machine
    "ARN_SPOT_CHECK_RATE_UNTRUSTED": "0",
    "ARN_HEARTBEAT_INTERVAL_S": "1",
}


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Two busy loops, one per core of a 2-core machine, for as long as the test runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def test_a_verifier_under_load_confirms_an_honest_gain_and_the_author_keeps_its_trust(
    network: Network, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Half the depth and width: at a 4 s budget the smaller model takes far more steps and wins clearly.
    smaller = BASELINE.read_text().replace("CPU_DEPTH = 4 ", "CPU_DEPTH = 2 ").replace("CPU_D_MODEL = 128 ", "CPU_D_MODEL = 64 ")
    assert smaller != BASELINE.read_text()
    proposal = tmp_path / "smaller.py"
    proposal.write_text(smaller)
    digest = variant_hash(smaller)
    network.start_coordinator(**SETTINGS)
    alice = network.start_worker("alice", "--agent", "command", "--agent-cmd", f"cp {proposal} train.py")

    def status() -> str | None:
        rows = network.query("select status from variants where hash = ?", digest)
        return rows[0][0] if rows else None

    assert wait_for(status, timeout_s=240, what="alice's claim", interval_s=1) == "candidate"
    # Her part is done: the load bob meets is the busy loops' alone, not her next experiments too.
    alice.stop(timeout_s=60)
    request.getfixturevalue("busy_machine")  # from here on, every core is busy
    network.start_worker("bob")
    def decided_status() -> str | None:
        found = status()
        return found if found != "candidate" else None

    decided = wait_for(decided_status, timeout_s=300, what="bob's verification", interval_s=1)

    assert decided == "verified"
    [(diff, bob_account)] = network.query(
        "select r.val_bpb - r.control_val_bpb, a.name from runs r join workers w on w.id = r.worker_id"
        " join accounts a on a.id = w.account_id join variants v on v.id = r.variant_id"
        " where v.hash = ? and r.kind = 'verify'",
        digest,
    )
    assert bob_account == "bob" and diff < 0
    [(invalid, quarantined)] = network.query(
        "select w.invalid_results, w.quarantined from workers w join accounts a on a.id = w.account_id"
        " where a.name = 'alice'"
    )
    assert (invalid, quarantined) == (0, 0)
