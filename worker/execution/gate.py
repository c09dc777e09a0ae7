"""The static policy's verdict on a source, computed once per source per process.

An explore lease's proposal is checked when the agent hands it in (so a refusal can go back to
the agent) and again when the executor is asked to run it; the verdict is the same, so the second
asks this cache. Sources are immutable strings, so the cache cannot go stale.
"""

from __future__ import annotations

import functools

from shared.policy import PolicyReport, check_source


@functools.lru_cache(maxsize=32)
def policy_report(source: str) -> PolicyReport:
    return check_source(source)
