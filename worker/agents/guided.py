"""The `guided` offline strategy: a bandit over (constant, direction) that learns from the research log.

Each arm is one constant moved up or down. The research log (ProposalContext.research_log) is
read for hypotheses of the offline form `NAME old -> new`; other hypotheses teach it nothing.

Rules, in the order they apply:

1. **Hardware.** A constant named `CPU_*` applies only on a track of hardware class `cpu`, one
   named `GPU_*` only on other tracks (the baseline's naming rule, stated in its docstring).
   The others are never changed: on a CPU track a GPU constant is dead code, and changing it
   buys a run of pure seed noise. With no hardware class in the context every constant applies.
2. **No repeats from the same parent.** A change is already tried if the log holds an
   experiment from this same parent that moved the same constant in the same direction by a
   factor within 20% of it (|ln f1 - ln f2| < ln 1.2). An int has one move per direction, so
   each direction of an int is tried at most once per parent. A float arm draws a few step sizes
   looking for an untried one, and is dropped for this proposal if it finds none.
   An arm with a claim from this parent still awaiting verification (`candidate`) is not moved
   again from here at any step size: a second bet on the same constant and direction wins nothing
   the first does not. If the first is promoted, the second is judged against the new head it
   only duplicates, and its verify runs are wasted; if the first fails, the second most likely
   rode the same seed noise. Once promoted, the arm is tried again from the new head.
3. **Credit.** Every parsed experiment (from any parent) credits its arm, by outcome:
   verified counts 2 successes (two independent runs agree it beat the head by more than the
   noise); candidate and discarded count half a success or failure each, scaled by |delta|
   against the log's median |delta| (a near-miss is mostly seed noise; a large swing is not);
   rejected counts half a failure; crashed one failure. A quarter of each outcome goes,
   inverted, to the opposite direction of the same constant: if raising LR hurt, lowering it is
   a little more promising, and undoing a verified gain a little less.
4. **Thompson sampling.** Each arm draws from Beta(0.2 + successes, 1 + failures) and the
   highest draw wins. The prior says about one change in six helps and weighs about one run,
   so an arm with a verified success is chosen often but untried arms keep being explored.

5. **Steps that can be told apart from noise.** A float moves by a factor drawn uniformly on a
   log scale between 1.3 and 2 (a fraction, on its odds: worker.agents.mutation), an int by its
   one step. Pooled over 36 cpu-tiny networks of both strategies (bench/agent_search.py at a 5 s
   budget, sized by bench/move_yield.py; figures in bench/RESULTS.md), 4 of the 129 float moves
   under 1.3x became verified improvements, against 23 of the 261 from 1.3x to 2x and 1 of the
   45 beyond: a small move's effect drowns in the seed noise that promotion must beat, and a
   large one overshoots.

All draws come from the agent's random.Random(context.seed), so a seed and a context always give
the same change.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.agents.base import AgentError, ProposalContext
from worker.agents.mutation import (
    DIRECTIONS,
    Change,
    Direction,
    NumericConstant,
    int_moves,
    is_fraction,
    log_move,
    move_float,
)

CPU_HARDWARE_CLASS = "cpu"
SIMILAR_LOG_FACTOR = math.log(1.2)  # moves closer than this (in ln of the factor) count as the same
# Float steps are drawn uniformly on a log scale between these factors (rule 5).
MIN_LOG_STEP = math.log(1.3)
MAX_LOG_STEP = math.log(2.0)
STEP_DRAWS = 8  # step sizes a float arm tries before it counts as exhausted for this parent

PRIOR_SUCCESSES = 0.2
PRIOR_FAILURES = 1.0
MIRROR_SHARE = 0.25
# status -> (successes, failures) credited to the arm an experiment moved, before delta scaling.
OUTCOME_CREDIT: dict[str, tuple[float, float]] = {
    "verified": (2.0, 0.0),
    "candidate": (0.5, 0.0),
    "discarded": (0.0, 0.5),
    "rejected": (0.0, 0.5),
    "crashed": (0.0, 1.0),
}
AWAITING_VERIFICATION = "candidate"
DELTA_SCALED = frozenset({"candidate", "discarded"})  # outcomes judged on one run's own claim
DELTA_SCALE_BOUNDS = (0.25, 2.0)
MIN_DELTAS_FOR_SCALE = 4

_HYPOTHESIS = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*) (?P<old>\S+) -> (?P<new>\S+)$")

Arm = tuple[str, Direction]


def applies_to_hardware(name: str, hardware_class: str | None) -> bool:
    """Whether the constant `name` is live on a track of `hardware_class` (rule 1 of the module docstring)."""
    if hardware_class is None:
        return True
    if name.startswith("CPU_"):
        return hardware_class == CPU_HARDWARE_CLASS
    if name.startswith("GPU_"):
        return hardware_class != CPU_HARDWARE_CLASS
    return True


@dataclass(frozen=True)
class PastChange:
    """One experiment of the research log that moved a single constant."""

    name: str
    direction: Direction
    log_factor: float  # mutation.log_move: ln of the factor on the value, or on the odds of a fraction
    parent: str  # the parent's hash, or its short form in a compact log
    status: str
    delta: float | None

    @property
    def arm(self) -> Arm:
        return (self.name, self.direction)


def _number(text: str) -> float | None:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_change(entry: Mapping[str, Any]) -> PastChange | None:
    """The single-constant move a research-log entry records, or None for any other kind of change."""
    match = _HYPOTHESIS.match(str(entry.get("hypothesis") or "").strip())
    if match is None:
        return None
    old, new = _number(match["old"]), _number(match["new"])
    if old is None or new is None or old == new or old * new <= 0:
        return None
    delta = entry.get("delta")
    return PastChange(
        name=match["name"],
        direction="up" if new > old else "down",
        log_factor=log_move(match["name"], old, new),
        parent=str(entry.get("parent_hash") or entry.get("parent") or ""),
        status=str(entry.get("status") or ""),
        delta=float(delta) if isinstance(delta, int | float) and math.isfinite(delta) else None,
    )


def same_variant(one: str, other: str) -> bool:
    """Whether two hashes name the same variant; either may be the short form of the other."""
    return bool(one) and bool(other) and (one.startswith(other) or other.startswith(one))


def is_repeat(name: str, direction: Direction, log_factor: float, tried: Iterable[PastChange]) -> bool:
    """Rule 2: the same constant, the same direction, a factor within 20% of one already tried."""
    return any(
        t.name == name and t.direction == direction and abs(t.log_factor - log_factor) < SIMILAR_LOG_FACTOR
        for t in tried
    )


def credit(history: Sequence[PastChange]) -> dict[Arm, tuple[float, float]]:
    """(successes, failures) per arm from every experiment in `history` (rule 3)."""
    deltas = [abs(p.delta) for p in history if p.delta is not None]
    scale = statistics.median(deltas) if len(deltas) >= MIN_DELTAS_FOR_SCALE else None
    tally: dict[Arm, list[float]] = {}
    for past in history:
        successes, failures = OUTCOME_CREDIT.get(past.status, (0.0, 0.0))
        if past.status in DELTA_SCALED and scale and past.delta is not None:
            low, high = DELTA_SCALE_BOUNDS
            weight = min(high, max(low, abs(past.delta) / scale))
            successes, failures = successes * weight, failures * weight
        own = tally.setdefault(past.arm, [0.0, 0.0])
        own[0] += successes
        own[1] += failures
        opposite = tally.setdefault((past.name, _opposite(past.direction)), [0.0, 0.0])
        opposite[0] += MIRROR_SHARE * failures
        opposite[1] += MIRROR_SHARE * successes
    return {arm: (s, f) for arm, (s, f) in tally.items()}


def _opposite(direction: Direction) -> Direction:
    return "down" if direction == "up" else "up"


def _directions(constant: NumericConstant) -> tuple[Direction, ...]:
    if isinstance(constant.value, float):
        return DIRECTIONS
    return tuple(d for d in DIRECTIONS if d in int_moves(constant.value))


class GuidedStrategy:
    """Picks a (constant, direction) by Thompson sampling over the research log's outcomes."""

    name = "guided"

    def change(
        self, constants: Sequence[NumericConstant], context: ProposalContext, rng: random.Random
    ) -> Change:
        live = [c for c in constants if applies_to_hardware(c.name, context.hardware_class)]
        if not live:
            raise AgentError(
                f"none of the parent's constants applies to hardware class {context.hardware_class!r}"
            )
        history = [p for p in map(parse_change, context.research_log) if p is not None]
        tried_here = [p for p in history if same_variant(p.parent, context.parent_hash)]
        awaiting = {p.arm for p in tried_here if p.status == AWAITING_VERIFICATION}
        tally = credit(history)
        arms = [
            (constant, direction)
            for constant in live
            for direction in _directions(constant)
            if (constant.name, direction) not in awaiting
        ]
        while arms:
            draws = [
                rng.betavariate(
                    PRIOR_SUCCESSES + tally.get((c.name, d), (0.0, 0.0))[0],
                    PRIOR_FAILURES + tally.get((c.name, d), (0.0, 0.0))[1],
                )
                for c, d in arms
            ]
            constant, direction = arms.pop(max(range(len(arms)), key=draws.__getitem__))
            change = _untried_move(constant, direction, tried=tried_here, rng=rng)
            if change is not None:
                return change
        raise AgentError("every change this strategy can make was already tried from this parent")


def _untried_move(
    constant: NumericConstant, direction: Direction, *, tried: Sequence[PastChange], rng: random.Random
) -> Change | None:
    old = constant.value
    if isinstance(old, int):
        new_int = int_moves(old)[direction]
        return (
            None
            if is_repeat(constant.name, direction, math.log(new_int / old), tried)
            else Change(constant, new_int)
        )
    fraction = is_fraction(constant.name, old)
    for _ in range(STEP_DRAWS):
        log_step = rng.uniform(MIN_LOG_STEP, MAX_LOG_STEP)
        new = move_float(old, direction=direction, log_step=log_step, fraction=fraction)
        if new != old and not is_repeat(constant.name, direction, log_move(constant.name, old, new), tried):
            return Change(constant, new)
    return None
