"""bench/gpu_check.sh is meant for the first GPU machine lent: check here what a CPU can of it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def test_the_script_parses_and_every_bench_script_it_calls_exists() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    called = set(re.findall(r"bench/[a-z_]+\.py", SCRIPT.read_text()))
    assert called == {"bench/kernels.py", "bench/train_throughput.py", "bench/gpu_track_run.py"}
    assert all((ROOT / path).is_file() for path in called)


def test_the_worker_run_step_runs_the_baseline_through_the_execution_on_a_synthetic_track() -> None:
    # The GPU step, shrunk to a CPU smoke run: same script, same path through the executor. The
    # budget leaves room for a first step that takes 5 s on a 2-core machine.
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_track_run.py"), "--device", "cpu",
         "--hardware-class", "cpu", "--seq-len", "64", "--budget", "10"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert (report["status"], report["layer"], report["code"]) == ("ok", None, None)
    assert 0 < report["metrics"]["val_bpb"] < 8
    assert {layer["name"] for layer in report["sandbox"]["layers"]} >= {"audit hook", "seccomp"}
