"""`worker status` from another terminal, against a real `worker join` working for a real coordinator."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.network import BIN, Network, wait_for
from tests.e2e.test_network import SETTINGS

pytestmark = pytest.mark.slow


def status(home: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [str(BIN / "worker"), "status", "--home", str(home), "--json"], capture_output=True, text=True, timeout=60
    )
    return done.returncode, json.loads(done.stdout)


def test_worker_status_shows_the_lease_and_step_while_training_and_not_running_after(network: Network) -> None:
    network.start_coordinator(**SETTINGS)
    worker = network.start_worker("alice")
    home = network.root / "worker-alice"

    def training() -> dict[str, Any] | None:
        code, report = status(home)
        slot = report["worker"]["slots"][0] if report["worker"] else None
        if code == 0 and slot and slot["state"] in ("training", "verifying") and (slot["progress"] or {}).get("step"):
            return report
        return None

    report = wait_for(training, timeout_s=240, what="worker status to show a training step", interval_s=0.2)

    assert report["running"] is True and report["note"] is None
    slot = report["worker"]["slots"][0]
    [(_lease_id, kind, variant_hash)] = network.query(
        "select leases.id, leases.kind, variants.hash from leases join variants on variants.id = leases.variant_id"
        " where leases.id = ?",
        slot["lease"]["id"],
    )
    assert (slot["lease"]["kind"], slot["lease"]["track_id"]) == (kind, "cpu-tiny")
    assert slot["state"] == ("training" if kind == "explore" else "verifying")
    assert variant_hash.startswith(slot["lease"]["variant"])
    assert slot["progress"]["step"] > 0 and slot["progress"]["eta"] is not None
    assert report["worker"]["pid"] == worker.popen.pid
    assert (report["worker"]["account"], report["worker"]["name"]) == ("alice", "alice-cpu")

    # Twice, as a volunteer's second Ctrl-C: the run is aborted and its lease handed back at once.
    worker.popen.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    worker.stop()
    code, after = status(home)

    assert code == 3
    assert after["running"] is False and after["note"].startswith("not running: stopped")
    assert after["worker"]["slots"][0]["state"] == "stopped"
    assert after["outbox"]["pending"] == 0


def test_worker_status_says_why_a_worker_waits_and_that_a_killed_one_is_not_running(network: Network) -> None:
    # No coordinator answers at the network's address: the worker waits for one (and trains nothing).
    worker = network.start_worker("alice")
    home = network.root / "worker-alice"

    def waiting() -> dict[str, Any] | None:
        code, report = status(home)
        slot = report["worker"]["slots"][0] if report["worker"] else None
        return report if code == 0 and slot and slot["state"] == "waiting" else None

    report = wait_for(waiting, timeout_s=120, what="worker status to say the worker is waiting")
    slot = report["worker"]["slots"][0]
    assert slot["reason"].startswith("the coordinator did not answer") and slot["until"] is not None

    worker.stop(sig=signal.SIGKILL)
    code, after = status(home)

    assert code == 3
    assert after["note"].startswith(f"not running: process {worker.popen.pid} is gone")
