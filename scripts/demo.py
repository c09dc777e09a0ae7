"""Run a whole network on this machine: a coordinator on SQLite and two CPU workers.

The workers belong to two accounts, so each verifies the other's claims. Ctrl-C stops everything.
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


def main() -> None:
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
    processes: list[subprocess.Popen[bytes]] = []
    try:
        print("starting the coordinator (the first start builds the cpu-tiny track)...", flush=True)
        coordinator = subprocess.Popen(
            [str(BIN / "coordinator"), "serve", "--port", str(port), "--log-level", "warning"], env=env
        )
        processes.append(coordinator)
        wait_until_up(url, coordinator)
        for account in ("alice", "bob"):
            processes.append(
                subprocess.Popen(
                    [str(BIN / "worker"), "join", url, "--agent", "offline", "--account", account,
                     "--name", f"{account}-cpu", "--home", str(home / f"worker-{account}"), "--threads", "1",
                     "--quiet"],
                    env=os.environ.copy(),
                )
            )
        print(f"\nleaderboard: {url}/tracks/cpu-tiny   (Ctrl-C stops the network)\n", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        sys.exit("a process of the network exited; stopping the rest")
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
