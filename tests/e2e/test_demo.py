"""The README's main command, `make demo` (scripts/demo.py): stopped by SIGTERM as by Ctrl-C, in
order, with none of the network's processes left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.network import free_port, wait_for
from tests.processes import process_is_gone
from worker.execution.process_tree import stat_fields

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(entry)
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return found


def test_a_sigterm_stops_the_demo_network_in_order_and_leaves_nothing_running(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {**os.environ, "DEMO_PORT": str(port), "DEMO_DIR": str(tmp_path / "demo"), "DEMO_BUDGET_S": "4"}
    with log.open("ab") as output:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py")], env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    started: list[int] = []
    try:
        wait_for(lambda: "(Ctrl-C stops the network)" in log.read_text(), timeout_s=300, what="the demo's network to start")
        started = children_of(demo.pid)  # the coordinator and the two workers, each in a session of its own
        assert len(started) == 3
        wait_for(lambda: "lease" in log.read_text(), timeout_s=120, what="a worker's first lease")

        demo.send_signal(signal.SIGTERM)  # to the script alone, as `kill` would
        assert demo.wait(timeout=240) == 0  # as after a Ctrl-C
        output = log.read_text()
        assert "stopping: each worker finishes its current experiment" in output
        assert output.count("worker stopped:") == 2, output[-3000:]
        assert [pid for pid in started if not process_is_gone(pid)] == []
    finally:
        for pid in [demo.pid, *started]:
            if not process_is_gone(pid):
                os.kill(pid, signal.SIGKILL)
        demo.wait(timeout=10)
