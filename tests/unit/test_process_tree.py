"""Killing a run's whole process tree while it changes under the kill: processes forking new
sessions as fast as they can, and parents that exit and orphan their children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.processes import process_is_gone
from worker.execution import process_tree

# The kill starts once a few helpers run, so that each case makes tens of processes, not hundreds:
# a run started beside these (the sandbox's process limit counts the uid's tasks at its start)
# could fork that many more once they are gone. Under xdist, no other test runs beside them.
pytestmark = pytest.mark.whole_machine
STARTED = 5

# Forks a helper in a session of its own every few milliseconds, each listed in pids.txt once it runs.
FORK_STORM = textwrap.dedent(
    """
    import subprocess, sys, time
    with open(sys.argv[1], "a") as listing:
        while True:
            helper = subprocess.Popen(["sleep", "600"], start_new_session=True)
            listing.write(f"{helper.pid}\\n")
            listing.flush()
            time.sleep(0.002)
    """
)


def listed(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def kill_once_started(script: str, listing: Path) -> dict[int, str]:
    """Run `script` (it lists what it starts in `listing`), and kill its tree once STARTED are listed."""
    root = subprocess.Popen([sys.executable, "-c", script, str(listing)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(listed(listing)) < STARTED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(listed(listing)) >= STARTED
        killed = process_tree.kill_tree(root.pid, group=True, reap_timeout_s=10)
        root.wait(timeout=10)
        return killed
    finally:
        root.kill()


def survivors(listing: Path) -> list[int]:
    """What the listing names that still runs, a moment after the kill; killed now, so that nothing
    outlives the test."""
    time.sleep(0.2)  # anything that escaped has had time to show itself in the listing
    escaped = [pid for pid in listed(listing) if not process_is_gone(pid)]
    for pid in escaped:
        os.kill(pid, signal.SIGKILL)
    return escaped


def test_a_tree_that_forks_new_sessions_while_it_is_killed_leaves_nothing_running(tmp_path: Path) -> None:
    listing = tmp_path / "pids.txt"
    killed = kill_once_started(FORK_STORM, listing)

    assert survivors(listing) == []
    assert set(listed(listing)) <= set(killed)


def test_a_subreaper_keeps_the_orphans_of_its_tree_and_sweeps_them(tmp_path: Path) -> None:
    # The parent the daemon is orphaned by exits long before the kill: only a subreaper still has it.
    reaper = textwrap.dedent(
        f"""
        import subprocess, sys
        from worker.execution import process_tree
        assert process_tree.become_subreaper()
        subprocess.run(["sh", "-c", "sleep 600 & echo $! > {tmp_path / 'daemon.pid'}"], check=True)
        daemon = int(open("{tmp_path / 'daemon.pid'}").read())
        assert daemon in process_tree.descendants(__import__("os").getpid())
        process_tree.kill_tree(__import__("os").getpid(), group=False, reap_timeout_s=10)
        process_tree.reap_children()
        """
    )
    subprocess.run([sys.executable, "-c", reaper], check=True, timeout=60, cwd=Path(__file__).resolve().parents[2])

    assert process_is_gone(int((tmp_path / "daemon.pid").read_text()))


# Two processes, each in a session of its own (out of the run's process group), that wake each
# other with SIGCONT as fast as they can and fork helpers in sessions of their own while they run:
# a kill that stops each process once lets one be woken after its stop and fork past the kill.
WAKERS = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    listing = open(sys.argv[1], "a")
    pipe_read, pipe_write = os.pipe()
    first = os.fork()
    if first == 0:
        os.setsid()
        partner = int(os.read(pipe_read, 32))
    else:
        second = os.fork()
        if second != 0:  # the root: it only waits
            os.write(pipe_write, str(second).encode())
            time.sleep(600)
        os.setsid()
        partner = first
    listing.write(f"{os.getpid()}\\n")
    while True:
        os.kill(partner, signal.SIGCONT)
        helper = subprocess.Popen(["sleep", "600"], start_new_session=True)
        listing.write(f"{helper.pid}\\n")
        listing.flush()
    """
)


def test_processes_that_wake_each_other_are_all_stopped_before_the_kill(tmp_path: Path) -> None:
    listing = tmp_path / "pids.txt"  # the wakers list themselves too
    kill_once_started(WAKERS, listing)

    assert survivors(listing) == []
