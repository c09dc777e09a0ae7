"""The static policy for train.py variants (trust layer 1): an AST check with stable refusal codes.

Standard library only: the coordinator runs it on every submitted variant, and the worker runs it
again, on a possibly bare GPU box, before it trains one. README.md lists what each code stops and,
as plainly, what it cannot.

    report = check_source(source)
    if not report.ok:
        print(report.summary())   # "line 12: forbidden_call: call to exec() is not allowed: ..."
"""

from shared.policy.check import DEFAULT_MAX_BYTES, check_source
from shared.policy.data import DataFigures, measure_data
from shared.policy.report import CODES, PolicyReport, Violation
from shared.policy.rules import MAX_COMPRESSED_BYTES, MAX_LITERAL_BYTES

# Bump when a change could turn a passing variant into a failing one, or the reverse, so that
# stored verdicts can be told apart.
POLICY_VERSION = "3"

__all__ = [
    "CODES",
    "DEFAULT_MAX_BYTES",
    "MAX_COMPRESSED_BYTES",
    "MAX_LITERAL_BYTES",
    "POLICY_VERSION",
    "DataFigures",
    "PolicyReport",
    "Violation",
    "check_source",
    "measure_data",
]
