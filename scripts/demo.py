"""Run a whole network on this machine: a coordinator on SQLite and two CPU workers.

The workers belong to two accounts, so each verifies the other's claims. Ctrl-C (or SIGTERM)
stops everything.
Settings come from the environment: DEMO_PORT (8000), DEMO_BUDGET_S (60), DEMO_DIR (.demo).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_until_up(url: str, coordinator: subprocess.Popen[bytes], *, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if coordinator.poll() is not None:
            sys.exit(f"the coordinator exited with code {coordinator.returncode}; see the log above")
        try:
            if httpx.get(f"{url}/v1/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"the coordinator did not answer at {url} within {timeout_s:.0f}s")


def stop_network(workers: list[subprocess.Popen[bytes]], coordinator: subprocess.Popen[bytes] | None) -> None:
    """Workers first: each finishes its experiment and delivers it while the coordinator still
    answers. A second Ctrl-C aborts their training; what they could not deliver stays in their
    outboxes for the next start. Then the coordinator."""
    print("\nstopping: each worker finishes its current experiment (Ctrl-C again to abort it)...", flush=True)
    _signal_all(workers)
    try:
        _wait_all(workers, timeout_s=float(os.environ.get("DEMO_BUDGET_S", "60")) + 120)
    except KeyboardInterrupt:
        print("aborting the workers' training...", flush=True)
        _signal_all(workers)
        _wait_all(workers, timeout_s=30)
    if coordinator is not None:
        _signal_all([coordinator])
        _wait_all([coordinator], timeout_s=30)


def _signal_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)


def _wait_all(processes: list[subprocess.Popen[bytes]], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # A SIGTERM (`kill`, a service manager, a timeout) stops the network as Ctrl-C does: in order,
    # and with nothing left running.
    signal.signal(signal.SIGTERM, _interrupted)
    port = int(os.environ.get("DEMO_PORT", "8000"))
    home = Path(os.environ.get("DEMO_DIR", ROOT / ".demo"))
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ARN_DATA_DIR": str(home / "coordinator"),
        "ARN_CPU_TINY_BUDGET_S": os.environ.get("DEMO_BUDGET_S", "60"),
        # Two accounts: each claim is re-run once by the other account before promotion.
        "ARN_CPU_TINY_QUORUM": "1",
    }
    coordinator: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = []
    try:
        print("starting the coordinator (the first start builds the cpu-tiny track)...", flush=True)
        # Own sessions: a Ctrl-C in the terminal reaches only this script, which stops the
        # network in order (stop_network) instead of every process at once.
        coordinator = subprocess.Popen(
            [str(BIN / "coordinator"), "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            start_new_session=True,
        )
        wait_until_up(url, coordinator)
        for account in ("alice", "bob"):
            workers.append(
                subprocess.Popen(
                    [str(BIN / "worker"), "join", url, "--agent", "offline", "--account", account,
                     "--name", f"{account}-cpu", "--home", str(home / f"worker-{account}"), "--threads", "1",
                     "--quiet"],
                    env=os.environ.copy(),
                    start_new_session=True,
                )
            )  # fmt: skip
        print(f"\nleaderboard: {url}/tracks/cpu-tiny   (Ctrl-C stops the network)\n", flush=True)
        while coordinator.poll() is None and all(w.poll() is None for w in workers):
            time.sleep(1)
        sys.exit("a process of the network exited; stopping the rest")
    except KeyboardInterrupt:
        pass
    finally:
        stop_network(workers, coordinator)


if __name__ == "__main__":
    main()
