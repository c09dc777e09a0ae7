"""The static policy on the sources the coordinator receives, checked in processes of their own.

A check is pure CPU (about 23 ms for the baseline: the parse and the AST walks,
bench/policy_cost.py) and, run in a request's thread, it holds the serving process's GIL, which
every other request of that process needs: at full load it took a third of a replica's CPU
(bench/RESULTS.md, "The lease and heartbeat paths' rows"). In a pool of processes it runs on
another core while the serving threads go on, and a source that brings the parser down takes a
checker with it, not the coordinator.

A checker that dies (killed by the host, out of memory) is replaced and the source checked again on
the fresh pool; a source that brings down two checkers in a row is refused (`too_large`, as for a
source nested too deeply to parse) rather than retried forever. With no processes configured the
check runs in the calling thread.

A checker exits when the process that started it is gone, even killed with SIGKILL: it blocks on a
work queue whose two ends it holds itself, so it would never see the end of it, and it keeps the
fork server alive with it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from shared.policy import PolicyReport, Violation, check_source
from shared.policy.report import TOO_LARGE

log = logging.getLogger(__name__)

ATTEMPTS = 2
PARENT_POLL_S = 1.0


class PolicyChecks:
    """`checks(source)` is `check_source(source)`, run in one of `processes` checker processes
    (started at the first check; `close` stops them)."""

    def __init__(self, processes: int, *, check: Callable[[str], PolicyReport] = check_source) -> None:
        self.processes = processes
        self._check = check
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, source: str) -> PolicyReport:
        if self.processes <= 0:
            return self._check(source)
        for attempt in range(1, ATTEMPTS + 1):
            pool = self._current()
            try:
                return pool.submit(self._check, source).result()
            except BrokenProcessPool:
                log.warning("a policy checker process died (attempt %d of %d); starting a fresh pool", attempt, ATTEMPTS)
                self._discard(pool)
        return PolicyReport((
            Violation(code=TOO_LARGE, line=1, col=0, message="the source could not be checked: it stopped the checker"),
        ))  # fmt: skip

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # forkserver: the serving process has threads, which a plain fork would copy mid-flight.
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["shared.policy", __name__])
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes, mp_context=context, initializer=exit_with, initargs=(os.getpid(),)
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def exit_with(parent_pid: int) -> None:
    """In a checker, as it starts: a thread that ends the checker once `parent_pid` is gone."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass  # alive, whoever it runs as

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
