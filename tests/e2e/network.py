"""Start real coordinators and workers as subprocesses, the way volunteers and maintainers do."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from worker.execution.process_tree import stat_fields

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
# What a failure report keeps of each process's log, once the routine lines are left out.
LOG_TAIL_CHARS = 6000
# Lines a long network test writes by the hundred, and that say nothing about why it failed.
ROUTINE_LINES = re.compile(r'"POST /v1/leases/[0-9a-f]+/heartbeat HTTP/1\.1" 200|"GET /v1/events')
# faulthandler's dump (shared/stacks.py): a header per thread, then its frames, innermost first.
STACK_HEADER = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$")
STACK_FRAMES_SHOWN = 8
# What a frame's path says before the package: the installation's folders, or this checkout's.
STACK_PATH_PREFIX = re.compile(rf'"(?:[^"]*/(?:site-packages|lib/python3\.\d+)|{re.escape(str(ROOT))})/')
STACKS_WAIT_S = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T | None], *, timeout_s: float, what: str, interval_s: float = 0.5) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    stacks_from: int | None = None  # where in the log the stack dump it was asked for begins

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def state(self) -> str:
        """Running (with the kernel's state letter: T is stopped, D waits on the disk), or its exit status."""
        code = self.popen.poll()
        if code is not None:
            return f"exited {code}"
        fields = stat_fields(Path(f"/proc/{self.popen.pid}/stat"))
        return "running" if fields is None else f"running (state {fields[0]})"

    def request_stacks(self) -> bool:
        """SIGUSR1: a coordinator or worker writes every thread's stack to its log (shared/stacks.py)."""
        if self.popen.poll() is not None:
            return False
        self.stacks_from = self.log.stat().st_size
        self.popen.send_signal(signal.SIGUSR1)
        return True

    def dumped_stacks(self) -> str:
        """The stacks written since request_stacks, each distinct one once; empty before any."""
        if self.stacks_from is None:
            return ""
        return condensed_stacks(self.log.read_bytes()[self.stacks_from :].decode(errors="replace"))

    def report(self) -> str:
        """The log's last lines that matter, with how many routine lines were left out of them,
        then the stacks it dumped when asked, each distinct stack once."""
        raw = self.log.read_bytes()
        cut = len(raw) if self.stacks_from is None else self.stacks_from
        lines = raw[:cut].decode(errors="replace").splitlines()
        kept = [line for line in lines if not ROUTINE_LINES.search(line)]
        text = "\n".join(kept)[-LOG_TAIL_CHARS:]
        header = f"===== {self.name}: pid {self.popen.pid}, {self.state()}, {len(lines) - len(kept)} routine lines left out"
        stacks = self.dumped_stacks()
        return "\n".join([header, text, *([f"----- {self.name}: its threads' stacks when asked\n{stacks}"] if stacks else [])])

    def stop(self, *, sig: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def condensed_stacks(dump: str) -> str:
    """faulthandler's dump with each distinct stack once (idle pool threads look alike), its
    innermost frames only, and paths from the package on."""
    stacks: list[list[str]] = []
    for line in dump.splitlines():
        if STACK_HEADER.match(line):
            stacks.append([])
        elif stacks and line.startswith("  File "):
            stacks[-1].append(STACK_PATH_PREFIX.sub('"', line.strip()))
    counts = Counter(tuple(stack[:STACK_FRAMES_SHOWN]) for stack in stacks)
    return "\n".join(
        f"{count} thread(s), innermost first:\n" + "\n".join(f"  {frame}" for frame in stack)
        for stack, count in counts.items()
    )


@dataclass
class Network:
    root: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    # Keys of its own in a shared Redis: another test's cached reads or rate limits never reach it.
    redis_prefix: str = field(default_factory=lambda: f"arn-test-{uuid.uuid4().hex[:8]}:")
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "coordinator"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        log = self.root / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_coordinator(self, *serve_options: str, **settings: str) -> Process:
        env = {
            **os.environ, "ARN_DATA_DIR": str(self.data_dir), "ARN_REDIS_PREFIX": self.redis_prefix, **self.env, **settings,
        }
        argv = [str(BIN / "coordinator"), "serve", "--port", str(self.port), *serve_options]
        process = self._spawn("coordinator", argv, env)

        def up() -> bool:
            if process.popen.poll() is not None:
                raise AssertionError(f"coordinator exited:\n{process.output()}")
            try:
                return httpx.get(f"{self.url}/v1/info", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout_s=180, what="the coordinator to answer")
        return process

    def start_worker(self, account: str, *extra: str, url: str | None = None) -> Process:
        """`worker join` for `account`, at the coordinator or at `url` (a proxy in front of it)."""
        argv = [
            str(BIN / "worker"), "join", url or self.url, "--agent", "offline", "--account", account,
            "--name", f"{account}-cpu", "--home", str(self.root / f"worker-{account}"), "--threads", "1", "--quiet",
            *extra,
        ]
        return self._spawn(f"worker-{account}", argv, {**os.environ})

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json() if "json" in response.headers.get("content-type", "") else response.text

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the coordinator's SQLite database directly (read-only)."""
        connection = sqlite3.connect(f"file:{self.data_dir / 'coordinator.sqlite3'}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def logs(self) -> str:
        """Each process's state, then what its log says last and where its threads stand; the
        workers first, whose logs are shorter."""
        states = "\n".join(f"{p.name}: {p.state()}" for p in self.processes)
        if any([p.request_stacks() for p in self.processes]):
            time.sleep(STACKS_WAIT_S)
        ordered = sorted(self.processes, key=lambda p: p.name == "coordinator")
        return "\n".join([states, *(p.report() for p in ordered)])

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.name.startswith("worker-") and process.popen.poll() is None:
                # A worker's first signal lets its run finish; the second aborts it, as a volunteer's
                # second Ctrl-C does: a teardown need not wait for training.
                process.popen.send_signal(signal.SIGTERM)
                time.sleep(0.2)
            process.stop()
