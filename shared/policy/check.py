"""check_source: the one entry point, from raw text to a PolicyReport."""

from __future__ import annotations

from shared.policy.checker import find_violations
from shared.policy.report import SYNTAX_ERROR, TOO_LARGE, PolicyReport, Violation
from shared.policy.syntax import parse

DEFAULT_MAX_BYTES = 256 * 1024


def check_source(source: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> PolicyReport:
    """Judge one train.py. Never raises on bad input: every refusal is a Violation."""
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError:
        return _refuse(SYNTAX_ERROR, 1, 0, "the source is not valid UTF-8 text")
    if size > max_bytes:
        return _refuse(TOO_LARGE, 1, 0, f"the source is {size} bytes; the limit is {max_bytes}")
    try:
        tree = parse(source)
    except SyntaxError as exc:
        return _refuse(SYNTAX_ERROR, exc.lineno or 1, max((exc.offset or 1) - 1, 0), exc.msg)
    except ValueError as exc:  # null bytes, on some Python versions
        return _refuse(SYNTAX_ERROR, 1, 0, str(exc))
    except (RecursionError, MemoryError):
        # The parser gives up on very deep nesting before this module's own (iterative) walk would.
        return _refuse(TOO_LARGE, 1, 0, "the source is nested too deeply to check")
    found = find_violations(tree, source)
    unique = dict.fromkeys(found)  # one chain can trip the same rule twice
    return PolicyReport(tuple(sorted(unique, key=lambda v: (v.line, v.col, v.code, v.message))))


def _refuse(code: str, line: int, col: int, message: str) -> PolicyReport:
    return PolicyReport((Violation(code=code, line=line, col=col, message=message),))
