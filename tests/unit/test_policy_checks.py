"""The policy check in processes of its own: the same verdicts, another process, and a checker that
dies is replaced (coordinator/policy_checks.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.policy_checks import PolicyChecks
from shared.policy import PolicyReport, Violation, check_source

REPO_ROOT = Path(__file__).resolve().parents[2]
BASELINE = (REPO_ROOT / "baseline" / "train.py").read_text()
HOSTILE = BASELINE + "\nimport subprocess\nsubprocess.run(['sh'])\n"


def pid_of_checker(source: str) -> PolicyReport:
    """A check that says which process ran it, and that stops its process when asked to."""
    if "stop the checker" in source:
        os._exit(1)
    return PolicyReport((Violation(code="syntax_error", line=1, col=0, message=str(os.getpid())),))


def checker_pid(checks: PolicyChecks) -> int:
    return int(checks("any source").violations[0].message)


@pytest.fixture
def checks() -> Iterator[PolicyChecks]:
    pool = PolicyChecks(1, check=pid_of_checker)
    yield pool
    pool.close()


def test_the_pool_gives_the_verdicts_a_check_in_the_thread_gives() -> None:
    pool = PolicyChecks(2)
    try:
        for source in (BASELINE, HOSTILE, "def train(:\n"):
            assert pool(source) == check_source(source)
        assert not pool(HOSTILE).ok
    finally:
        pool.close()


def test_the_check_runs_in_another_process_and_without_processes_in_this_one(checks: PolicyChecks) -> None:
    assert checker_pid(checks) != os.getpid()
    assert checker_pid(PolicyChecks(0, check=pid_of_checker)) == os.getpid()


def test_a_checker_killed_by_the_host_is_replaced_and_the_next_source_is_checked(checks: PolicyChecks) -> None:
    first = checker_pid(checks)
    os.kill(first, signal.SIGKILL)
    second = checker_pid(checks)
    assert second != first


def test_a_source_that_stops_every_checker_is_refused_and_the_pool_goes_on(checks: PolicyChecks) -> None:
    report = checks("please stop the checker")
    assert [v.code for v in report.violations] == ["too_large"]
    assert "could not be checked" in report.violations[0].message
    assert checker_pid(checks) != os.getpid()


def test_close_stops_the_checkers(checks: PolicyChecks) -> None:
    pid = checker_pid(checks)
    checks.close()
    deadline = time.monotonic() + 5.0
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # the checker is a child of the fork server, which reaps it
    assert not alive(pid)


def test_a_coordinator_killed_with_sigkill_leaves_no_checker_behind() -> None:
    script = (
        "from coordinator.policy_checks import PolicyChecks\n"
        "from tests.unit.test_policy_checks import checker_pid, pid_of_checker\n"
        "print(checker_pid(PolicyChecks(1, check=pid_of_checker)), flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    coordinator = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert coordinator.stdout is not None
        checker = int(coordinator.stdout.readline())
        assert alive(checker)
    finally:
        coordinator.kill()
        coordinator.wait()
    deadline = time.monotonic() + 10.0
    while alive(checker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(checker)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
