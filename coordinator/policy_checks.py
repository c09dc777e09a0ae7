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
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from shared.policy import PolicyReport, Violation, check_source
from shared.policy.report import TOO_LARGE

log = logging.getLogger(__name__)

ATTEMPTS = 2


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
                context.set_forkserver_preload(["shared.policy"])
                self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context)
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
