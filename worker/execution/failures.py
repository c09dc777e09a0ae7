"""The one exception a run's own code raises to end it: a status, a stable code and a reason.

Both sides use it: the variant's host (a crash, a broken contract, an output check) and the
scorer (a probe, a slow forward). Codes come from shared.run_codes.
"""

from __future__ import annotations

from shared.run_codes import CONTRACT_VIOLATION, REJECTED


class RunFailed(Exception):
    """`reason` is for the worker's own eyes; `parts` (a crash's fields) is what the supervisor may
    publish of it, after checking each (worker.execution.reasons)."""

    def __init__(self, status: str, code: str, reason: str, parts: dict[str, object] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.parts = parts


def contract_violation(reason: str) -> RunFailed:
    return RunFailed(REJECTED, CONTRACT_VIOLATION, reason)


def probe_failed(code: str, detail: str) -> RunFailed:
    """A named integrity probe or output check refused the model: `probe <code>: <detail>`."""
    return RunFailed(REJECTED, code, f"probe {code}: {detail}")
