"""The offline agent: no model, no credentials; it nudges one UPPER_CASE hyperparameter.

It finds module-level assignments of a numeric literal to an UPPER_CASE name (`LR = 0.004`,
`DEPTH: int = 4`, `WD = -1e-3`), picks one, and rewrites only that literal's characters in the
source text, so the child differs from its parent by exactly one token and the diff reads like a
hyperparameter sweep. Floats get multiplicative log-normal jitter rounded to 3 significant figures;
ints step by one, or double/halve when they are powers of two from 8 up (batch sizes, widths).
A value never crosses zero, since a positive learning rate or width turned negative or zero is a
wasted run rather than an experiment.

Which constant to change is a `Strategy`. The plain `RandomStrategy` picks uniformly; a smarter one
can read the research log in the ProposalContext and prefer what has not been tried.
Everything is drawn from random.Random(context.seed), so a lease always yields the same child.
"""

from __future__ import annotations

import ast
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.protocol import AgentUsage
from worker.agents.base import AgentError, Proposal, ProposalContext

_UPPER_CASE = re.compile(r"^[A-Z][A-Z0-9_]*$")
FLOAT_JITTER_SIGMA = 0.3  # log-space standard deviation: about +-35% for one sigma
MAX_TRIES = 32


@dataclass(frozen=True)
class NumericConstant:
    """A module-level `NAME = <number>` and where its literal sits in the source (character offsets)."""

    name: str
    value: int | float
    literal: str  # the literal exactly as written, sign included
    start: int
    end: int


class _Positions:
    """Turns ast (line, UTF-8 byte column) positions into character offsets in the source."""

    def __init__(self, source: str) -> None:
        # Split on the same line breaks as the tokenizer (\n, \r, \r\n), which bytes.splitlines uses.
        self._lines = [line.decode("utf-8") for line in source.encode("utf-8").splitlines(keepends=True)]
        self._starts = [0]
        for line in self._lines:
            self._starts.append(self._starts[-1] + len(line))

    def offset(self, lineno: int, col_byte: int) -> int:
        # ast columns count bytes: a non-ASCII character earlier on the line would shift a char index.
        prefix = self._lines[lineno - 1].encode("utf-8")[:col_byte].decode("utf-8")
        return self._starts[lineno - 1] + len(prefix)


def _numeric_value(node: ast.expr) -> int | float | None:
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
    ):
        inner = _numeric_value(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):  # bool is not a number here
        value: int | float = node.value  # type: ignore[assignment]
        return value
    return None


def find_constants(source: str) -> list[NumericConstant]:
    """Every module-level UPPER_CASE name bound to a numeric literal; the last binding of each name."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise AgentError(f"the parent does not parse: {exc.msg} (line {exc.lineno})") from exc
    positions = _Positions(source)
    found: dict[str, NumericConstant] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if not isinstance(target, ast.Name) or not _UPPER_CASE.match(target.id):
            continue
        number = _numeric_value(value)
        if number is None or value.end_lineno is None or value.end_col_offset is None:
            continue
        start = positions.offset(value.lineno, value.col_offset)
        end = positions.offset(value.end_lineno, value.end_col_offset)
        found.pop(target.id, None)  # a later binding wins, and keeps source order
        found[target.id] = NumericConstant(target.id, number, source[start:end], start, end)
    return list(found.values())


def _format_float(value: float, *, like: str) -> str:
    """`value` (already at 3 significant figures) in the style of the literal it replaces."""
    if "e" in like.lower():
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return repr(value)  # the shortest text that reads back as this float, always with a "." or "e"


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def mutate_int(value: int, rng: random.Random) -> int:
    magnitude = abs(value)
    if magnitude >= 8 and _is_power_of_two(magnitude):
        candidates = [value * 2, value // 2]
    else:
        candidates = [value + 1, value - 1]
    # Never reach or cross zero: a positive width becoming 0 is a crash, not an experiment.
    allowed = [c for c in candidates if (c > 0) == (value > 0) and c != 0] if value != 0 else [1]
    return rng.choice(allowed)


def mutate_float(value: float, rng: random.Random) -> float:
    return float(f"{value * math.exp(rng.gauss(0.0, FLOAT_JITTER_SIGMA)):.3g}")


def format_like(value: int | float, *, like: str) -> str:
    if isinstance(value, float):
        return _format_float(value, like=like)
    return f"{value:_}" if "_" in like else str(value)


class Strategy(Protocol):
    """Chooses which constant to change. The value itself is jittered by the agent."""

    name: str

    def pick(
        self, constants: Sequence[NumericConstant], context: ProposalContext, rng: random.Random
    ) -> NumericConstant: ...


class RandomStrategy:
    """Every mutable constant equally likely."""

    name = "random"

    def pick(
        self, constants: Sequence[NumericConstant], context: ProposalContext, rng: random.Random
    ) -> NumericConstant:
        return rng.choice(list(constants))


STRATEGIES: dict[str, type[Strategy]] = {"random": RandomStrategy}


class OfflineAgent:
    """Mutates one numeric hyperparameter of the parent (see the module docstring)."""

    name = "offline"

    def __init__(self, *, strategy: str | Strategy = "random") -> None:
        if isinstance(strategy, str):
            if strategy not in STRATEGIES:
                raise AgentError(
                    f"unknown offline strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}"
                )
            strategy = STRATEGIES[strategy]()
        self.strategy = strategy

    def propose(self, context: ProposalContext) -> Proposal:
        source = context.parent_source
        # A float at zero stays zero under multiplicative jitter; leave it out rather than retry on it.
        constants = [c for c in find_constants(source) if not (isinstance(c.value, float) and c.value == 0.0)]
        if not constants:
            raise AgentError("the parent has no module-level UPPER_CASE numeric constants to change")
        rng = random.Random(context.seed)
        for attempt in range(1, MAX_TRIES + 1):
            constant = self.strategy.pick(constants, context, rng)
            if isinstance(constant.value, float):
                new_value: int | float = mutate_float(constant.value, rng)
            else:
                new_value = mutate_int(constant.value, rng)
            if new_value == constant.value:
                continue  # rounding brought it back; draw again
            literal = format_like(new_value, like=constant.literal)
            return Proposal(
                source=source[: constant.start] + literal + source[constant.end :],
                hypothesis=f"{constant.name} {constant.literal} -> {literal}",
                usage=AgentUsage(agent=self.name, model=f"strategy:{self.strategy.name}", attempts=attempt),
            )
        raise AgentError(f"no change found in {MAX_TRIES} draws (seed {context.seed})")
