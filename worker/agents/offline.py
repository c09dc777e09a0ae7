"""The offline agent: no model, no credentials; it moves one UPPER_CASE hyperparameter.

How a change is made (which literals count, how values move) is `worker.agents.mutation`.
Which change to make is a strategy's choice:

- `guided` (the default, `worker.agents.guided`) reads the research log in the ProposalContext:
  it skips what was already tried from this parent, prefers constants and directions whose
  changes improved verified results, and leaves out constants of the other hardware.
- `random` picks any constant uniformly and jitters it: the plain mutator, kept as a baseline
  to measure the guided one against (`bench/agent_search.py`).

Everything is drawn from random.Random(context.seed), so a lease and its context always yield the
same child.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from shared.protocol import AgentUsage
from worker.agents.base import AgentError, Proposal, ProposalContext
from worker.agents.guided import GuidedStrategy
from worker.agents.mutation import (
    Change,
    NumericConstant,
    find_constants,
    mutable_constants,
    mutate_float,
    mutate_int,
)

__all__ = [
    "STRATEGIES",
    "ChangeStrategy",
    "OfflineAgent",
    "RandomStrategy",
    "Strategy",
    "find_constants",
    "mutate_int",
]

MAX_TRIES = 32


class Strategy(Protocol):
    """Chooses which constant to change; the agent jitters its value at random."""

    name: str

    def pick(
        self, constants: Sequence[NumericConstant], context: ProposalContext, rng: random.Random
    ) -> NumericConstant: ...


@runtime_checkable
class ChangeStrategy(Protocol):
    """Chooses the constant and its new value (a direction and a step, say); raises AgentError if none is left."""

    name: str

    def change(
        self, constants: Sequence[NumericConstant], context: ProposalContext, rng: random.Random
    ) -> Change: ...


class RandomStrategy:
    """Every mutable constant equally likely."""

    name = "random"

    def pick(
        self, constants: Sequence[NumericConstant], context: ProposalContext, rng: random.Random
    ) -> NumericConstant:
        return rng.choice(list(constants))


STRATEGIES: dict[str, type[Strategy] | type[ChangeStrategy]] = {
    "guided": GuidedStrategy,
    "random": RandomStrategy,
}
DEFAULT_STRATEGY = "guided"


class OfflineAgent:
    """Changes one numeric hyperparameter of the parent (see the module docstring)."""

    name = "offline"

    def __init__(self, *, strategy: str | Strategy | ChangeStrategy = DEFAULT_STRATEGY) -> None:
        if isinstance(strategy, str):
            if strategy not in STRATEGIES:
                raise AgentError(
                    f"unknown offline strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}"
                )
            strategy = STRATEGIES[strategy]()
        self.strategy = strategy

    def propose(self, context: ProposalContext) -> Proposal:
        source = context.parent_source
        constants = mutable_constants(source)
        if not constants:
            raise AgentError("the parent has no module-level UPPER_CASE numeric constants to change")
        rng = random.Random(context.seed)
        for attempt in range(1, MAX_TRIES + 1):
            change = self._draw(constants, context, rng)
            if change.new_value == change.constant.value:
                continue  # rounding brought it back; draw again
            return Proposal(
                source=change.apply(source),
                hypothesis=change.hypothesis,
                usage=AgentUsage(agent=self.name, model=f"strategy:{self.strategy.name}", attempts=attempt),
            )
        raise AgentError(f"no change found in {MAX_TRIES} draws (seed {context.seed})")

    def _draw(
        self, constants: Sequence[NumericConstant], context: ProposalContext, rng: random.Random
    ) -> Change:
        if isinstance(self.strategy, ChangeStrategy):
            return self.strategy.change(constants, context, rng)
        constant = self.strategy.pick(constants, context, rng)
        if isinstance(constant.value, float):
            return Change(constant, mutate_float(constant.value, rng))
        return Change(constant, mutate_int(constant.value, rng))
