"""bench/loop_overhead.py runs a real coordinator and worker and accounts for every phase of a lease.

It runs the way a maintainer runs it (a subprocess, here with a one-second budget); nothing here
checks how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


# A 1 s budget: alone, or another test's load turns a run into one the scorer refuses as too slow.
@pytest.mark.whole_machine
def test_the_loop_bench_times_a_calibration_and_an_explore_cycle_phase_by_phase() -> None:
    # One thread: on a small, busy machine a second one makes steps and forwards stall, and a run
    # the scorer refuses as too slow would be calibrated again instead of explored from.
    script = [str(REPO_ROOT / "bench" / "loop_overhead.py"), "--budget", "1", "--threads", "1", "--experiments", "2"]
    result = subprocess.run(
        [sys.executable, *script, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    leases = json.loads(result.stdout)["leases"]

    assert [lease["kind"] for lease in leases] == ["calibrate", "explore"]
    for lease in leases:
        phases = [lease[k] for k in ("lease_to_spawn_s", "spawn_to_train_s", "train_s", "eval_s", "eval_end_to_accepted_s")]
        assert all(value is not None and value >= 0 for value in phases), lease
        # The phases tile the cycle: nothing between lease and acceptance goes unaccounted.
        assert abs(sum(phases) - lease["cycle_s"]) < 1e-6
        assert lease["overhead_s"] == lease["cycle_s"] - lease["train_s"]
