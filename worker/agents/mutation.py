"""Finding a train.py's numeric hyperparameters and moving one of them: the offline agent's hands.

A hyperparameter here is a module-level assignment of a numeric literal to an UPPER_CASE name
(`LR = 0.004`, `DEPTH: int = 4`, `WD = -1e-3`). A `Change` rewrites only that literal's
characters, so a child differs from its parent by exactly one token and the diff reads like a
hyperparameter sweep. Floats move multiplicatively and are rounded to 3 significant figures;
ints step by one, or double/halve when they are powers of two from 8 up (batch sizes, widths).
A value never crosses or reaches zero, since a positive learning rate or width turned negative or
zero is a wasted run rather than an experiment.

A *fraction* (a float strictly between 0 and 1 whose name says it is one: `..._BETA2`,
`MUON_MOMENTUM`, `WARMUP_FRACTION`, `DROPOUT`...) moves by a factor on its odds, x / (1 - x),
rather than on x, so it stays inside (0, 1) and a step near 1 is as real as one near 0: 0.95 moved
up by 1.5 becomes 0.9661, where a factor on x would give 1.42, a momentum the model can only clamp.
"""

from __future__ import annotations

import ast
import functools
import math
import random
import re
from dataclasses import dataclass
from typing import Literal

from worker.agents.base import AgentError

Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, Direction] = ("up", "down")

_UPPER_CASE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Words that mark a constant as a fraction in (0, 1) (see the module docstring).
_FRACTION_WORDS = re.compile(r"(^|_)(BETA\d*|MOMENTUM|FRACTION|DROPOUT|PROB|PROBABILITY)(_|$)")
FLOAT_JITTER_SIGMA = 0.3  # log-space standard deviation: about +-35% for one sigma


@dataclass(frozen=True)
class NumericConstant:
    """A module-level `NAME = <number>` and where its literal sits in the source (character offsets)."""

    name: str
    value: int | float
    literal: str  # the literal exactly as written, sign included
    start: int
    end: int


@dataclass(frozen=True)
class Change:
    """Set `constant` to `new_value` and nothing else."""

    constant: NumericConstant
    new_value: int | float

    @property
    def literal(self) -> str:
        return format_like(self.new_value, like=self.constant.literal)

    def apply(self, source: str) -> str:
        return source[: self.constant.start] + self.literal + source[self.constant.end :]

    @property
    def hypothesis(self) -> str:
        # Parsed back by worker.agents.guided (`NAME old -> new`): keep the two in step.
        return f"{self.constant.name} {self.constant.literal} -> {self.literal}"


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
    return list(_constants_of(source))


@functools.lru_cache(maxsize=16)
def _constants_of(source: str) -> tuple[NumericConstant, ...]:
    """find_constants, parsed once per source: an agent proposes many changes of one parent."""
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
    return tuple(found.values())


def mutable_constants(source: str) -> list[NumericConstant]:
    """The constants a change can move: a float at zero stays zero under a multiplicative move."""
    return [c for c in find_constants(source) if not (isinstance(c.value, float) and c.value == 0.0)]


# --- moving values -------------------------------------------------------------------------------


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _int_candidates(value: int) -> list[int]:
    magnitude = abs(value)
    if magnitude >= 8 and _is_power_of_two(magnitude):
        candidates = [value * 2, value // 2]
    else:
        candidates = [value + 1, value - 1]
    # Never reach or cross zero: a positive width becoming 0 is a crash, not an experiment.
    return [c for c in candidates if (c > 0) == (value > 0) and c != 0] if value != 0 else [1]


def mutate_int(value: int, rng: random.Random) -> int:
    return rng.choice(_int_candidates(value))


def mutate_float(value: float, rng: random.Random) -> float:
    return float(f"{value * math.exp(rng.gauss(0.0, FLOAT_JITTER_SIGMA)):.3g}")


def int_moves(value: int) -> dict[Direction, int]:
    """The one new value each direction allows for an int (a direction that would cross zero is absent)."""
    moves: dict[Direction, int] = {}
    for candidate in _int_candidates(value):
        moves["up" if candidate > value else "down"] = candidate
    return moves


def is_fraction(name: str, value: float) -> bool:
    """Whether the constant `name` = `value` moves on its odds (see the module docstring)."""
    return 0.0 < value < 1.0 and _FRACTION_WORDS.search(name) is not None


def log_move(name: str, old: float, new: float) -> float:
    """The size of the move old -> new on the constant's own scale: ln of the factor on the value,
    or on the odds for a fraction. Its sign follows the magnitude (or the odds), not the direction."""
    if is_fraction(name, old) and 0.0 < new < 1.0:
        return math.log(new / (1.0 - new)) - math.log(old / (1.0 - old))
    return math.log(new / old)


def move_float(value: float, *, direction: Direction, log_step: float, fraction: bool = False) -> float:
    """`value` moved up or down by the factor exp(log_step), rounded to 3 significant figures.

    With `fraction`, the factor applies to the odds, and a value above one half keeps 3 significant
    figures of its distance to 1 (0.9993, not 0.999), so a small step near 1 is not rounded away.
    """
    if fraction:
        step = log_step if direction == "up" else -log_step
        odds = value / (1.0 - value) * math.exp(step)
        moved = odds / (1.0 + odds)
        if moved <= 0.5:
            return float(f"{moved:.3g}")
        rest = float(f"{1.0 - moved:.3g}")
        return round(1.0 - rest, 2 - math.floor(math.log10(rest))) if rest > 0 else value
    # For a negative value "up" is towards zero, so the magnitude shrinks.
    grows = (direction == "up") == (value > 0)
    return float(f"{value * math.exp(log_step if grows else -log_step):.3g}")


def format_like(value: int | float, *, like: str) -> str:
    if isinstance(value, float):
        return _format_float(value, like=like)
    return f"{value:_}" if "_" in like else str(value)


def _format_float(value: float, *, like: str) -> str:
    """`value` (already at 3 significant figures) in the style of the literal it replaces."""
    if "e" in like.lower():
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return repr(value)  # the shortest text that reads back as this float, always with a "." or "e"
