"""What the policy found: violations with stable codes, and the report that holds them."""

from __future__ import annotations

from dataclasses import dataclass

# Stable codes. Callers branch on these and README.md documents each one; never rename them.
TOO_LARGE = "too_large"
TOO_MUCH_DATA = "too_much_data"
SYNTAX_ERROR = "syntax_error"
IMPORT_NOT_ALLOWED = "import_not_allowed"
FORBIDDEN_CALL = "forbidden_call"
DUNDER_ACCESS = "dunder_access"
MODULE_MONKEYPATCH = "module_monkeypatch"
NATIVE_CODE = "native_code"
IO_ACCESS = "io_access"
HARNESS_ACCESS = "harness_access"
STAR_IMPORT = "star_import"

CODES: tuple[str, ...] = (
    TOO_LARGE,
    TOO_MUCH_DATA,
    SYNTAX_ERROR,
    IMPORT_NOT_ALLOWED,
    FORBIDDEN_CALL,
    DUNDER_ACCESS,
    MODULE_MONKEYPATCH,
    NATIVE_CODE,
    IO_ACCESS,
    HARNESS_ACCESS,
    STAR_IMPORT,
)


@dataclass(frozen=True)
class Violation:
    """One refusal: where in the source (1-based line, 0-based column) and why."""

    code: str
    line: int
    col: int
    message: str

    def describe(self) -> str:
        return f"line {self.line}: {self.code}: {self.message}"


@dataclass(frozen=True)
class PolicyReport:
    """The verdict on one source: it passes only when there are no violations."""

    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        """One line per violation, in source order; empty when the source passes."""
        return "\n".join(violation.describe() for violation in self.violations)
