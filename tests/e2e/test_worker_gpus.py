"""`worker join --gpus 0,1` against a real coordinator: two pinned workers of one account at once.

This machine has no GPU, so NVML is the fake one (tests/fake_nvml.py, two devices), put where the
supervisor imports `pynvml` from; the children train with `--device cpu`, passed on like any other
option, while pinned as they would be on a GPU machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.network import BIN, Network, wait_for
from tests.e2e.test_network import SETTINGS
from worker.status import pid_alive

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYNVML = """
import sys

from tests.fake_nvml import FakeGpu, FakeNvml

sys.modules[__name__] = FakeNvml(FakeGpu(uuid="GPU-0000"), FakeGpu(uuid="GPU-0001"))
"""


def test_two_gpus_hold_two_leases_at_once_each_pinned_to_its_own_device(network: Network) -> None:
    network.start_coordinator(**SETTINGS)
    fake = network.root / "fake-nvml"
    fake.mkdir()
    (fake / "pynvml.py").write_text(FAKE_PYNVML)
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    env["PYTHONPATH"] = f"{fake}{os.pathsep}{ROOT}"
    home = network.root / "worker-gpus"
    argv = [
        str(BIN / "worker"), "join", network.url, "--gpus", "0,1", "--device", "cpu", "--agent", "offline",
        "--account", "alice", "--name", "box", "--home", str(home), "--threads", "1", "--quiet",
        "--max-experiments", "1",
    ]  # fmt: skip
    supervisor = network._spawn("worker-gpus", argv, env)
    try:

        def two_active() -> list[tuple[Any, ...]] | None:
            if supervisor.popen.poll() is not None:
                raise AssertionError(f"the supervisor exited early:\n{supervisor.output()}")
            rows = network.query(
                "select workers.name, accounts.name from leases join workers on workers.id = leases.worker_id"
                " join accounts on accounts.id = workers.account_id where leases.state = 'active'"
            )
            return rows if len(rows) >= 2 else None

        active = wait_for(two_active, timeout_s=240, what="two leases active at once", interval_s=0.2)
        assert sorted(active) == [("box-gpu0", "alice"), ("box-gpu1", "alice")]

        wait_for(
            lambda: supervisor.popen.poll() is not None, timeout_s=300, what="both workers to finish and exit"
        )
    finally:
        _stop_everything(supervisor.popen, home)

    output = supervisor.output()
    assert supervisor.popen.returncode == 0, output
    lines = output.splitlines()
    assert any(line.startswith("[gpu0] ") for line in lines) and any(
        line.startswith("[gpu1] ") for line in lines
    )
    assert "gpu0: worker exited with status 0" in lines and "gpu1: worker exited with status 0" in lines

    # Each worker, and each run (as its training process saw it, or its worker where it never trained),
    # saw its own device and no other.
    for gpu in (0, 1):
        published = json.loads((home / f"gpu{gpu}" / "status.json").read_text())
        assert (published["name"], published["cuda_visible_devices"]) == (f"box-gpu{gpu}", str(gpu))
    runs = network.query(
        "select workers.name, runs.env from runs join workers on workers.id = runs.worker_id"
    )
    pinned = {(name, json.loads(run_env)["cuda_visible_devices"]) for name, run_env in runs}
    assert pinned == {("box-gpu0", "0"), ("box-gpu1", "1")}
    workers = network.query(
        "select workers.name from workers join accounts on accounts.id = workers.account_id"
    )
    assert sorted(workers) == [("box-gpu0",), ("box-gpu1",)]

    # One home for the volunteer: `worker status` shows both GPUs' workers, the data was fetched once.
    done = subprocess.run(
        [str(BIN / "worker"), "status", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert [(s["slot"], s["name"], s["state"]) for s in report["worker"]["slots"]] == [
        (0, "box-gpu0", "stopped"),
        (1, "box-gpu1", "stopped"),
    ]
    assert report["worker"]["today"]["experiments"] + report["worker"]["today"]["verify_runs"] == 2
    assert (
        (home / "gpu0" / "assets").resolve()
        == (home / "gpu1" / "assets").resolve()
        == (home / "assets").resolve()
    )


def _stop_everything(popen: subprocess.Popen[bytes], home: Path) -> None:
    """Stop the supervisor as a volunteer's two Ctrl-Cs do, then make sure no child outlives the test."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    for status in home.glob("gpu*/status.json"):
        pid = json.loads(status.read_text())["pid"]
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone
        if pid_alive(pid) and str(home).encode() in command:  # that child, not a process given its pid since
            os.kill(pid, signal.SIGKILL)
