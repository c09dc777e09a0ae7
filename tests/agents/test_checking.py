"""propose_checked: what is refused before training, what the agent is told, and what usage adds up to."""

from __future__ import annotations

from collections import deque

import pytest

from shared.hashing import short_hash, variant_hash
from shared.protocol import MAX_SOURCE_BYTES, AgentUsage
from tests.agents.conftest import CHILD_SOURCE, PARENT_SOURCE
from worker.agents.base import AgentError, Proposal, ProposalContext
from worker.agents.checking import merge_usage, propose_checked

OTHER_CHILD = PARENT_SOURCE.replace("BATCH_SIZE = 8", "BATCH_SIZE = 16")


class ScriptedAgent:
    """Hands out prepared proposals in order and remembers the seed it was asked with each time."""

    name = "scripted"

    def __init__(self, *proposals: Proposal) -> None:
        self.proposals = deque(proposals)
        self.seeds: list[int] = []

    def propose(self, context: ProposalContext) -> Proposal:
        self.seeds.append(context.seed)
        return self.proposals.popleft()


class ScriptedRevisingAgent(ScriptedAgent):
    def __init__(self, *proposals: Proposal) -> None:
        super().__init__(*proposals)
        self.revisions: list[tuple[str, str]] = []

    def revise(self, context: ProposalContext, previous: Proposal, reason: str) -> Proposal:
        self.revisions.append((previous.hypothesis, reason))
        return self.proposals.popleft()


def never_known(digest: str) -> bool:
    return False


def test_an_agent_without_revise_is_asked_again_with_the_next_seed(context: ProposalContext) -> None:
    agent = ScriptedAgent(Proposal(PARENT_SOURCE, "No change"), Proposal(CHILD_SOURCE, "Double LR"))
    refusals: list[tuple[int, str]] = []

    proposal = propose_checked(
        agent, context, is_known=never_known, on_attempt=lambda number, why: refusals.append((number, why))
    )

    assert proposal.source == CHILD_SOURCE
    assert agent.seeds == [7, 8]
    assert refusals == [(1, "train.py is identical to its parent; change something")]


def test_an_agent_with_revise_is_told_why_its_proposal_was_refused(context: ProposalContext) -> None:
    agent = ScriptedRevisingAgent(
        Proposal("def train(ctx):\n    return (\n", "Broken"), Proposal(CHILD_SOURCE, "Double LR")
    )

    proposal = propose_checked(agent, context, is_known=never_known)

    assert proposal.source == CHILD_SOURCE
    assert agent.seeds == [7]
    assert agent.revisions == [("Broken", "train.py is not valid Python: line 2: '(' was never closed")]


def test_a_variant_the_coordinator_knows_is_refused(context: ProposalContext) -> None:
    known = {variant_hash(CHILD_SOURCE)}
    asked: list[str] = []

    def is_known(digest: str) -> bool:
        asked.append(digest)
        return digest in known

    agent = ScriptedAgent(Proposal(CHILD_SOURCE, "Double LR"), Proposal(OTHER_CHILD, "Double the batch"))
    refusals: list[tuple[int, str]] = []

    proposal = propose_checked(
        agent, context, is_known=is_known, on_attempt=lambda n, why: refusals.append((n, why))
    )

    assert proposal.source == OTHER_CHILD
    assert asked == [variant_hash(CHILD_SOURCE), variant_hash(OTHER_CHILD)]
    assert refusals == [
        (
            1,
            f"variant {short_hash(variant_hash(CHILD_SOURCE))} is already known to the network; propose a different change",
        )
    ]


def test_a_policy_violation_is_refused_before_the_coordinator_is_asked(context: ProposalContext) -> None:
    sneaky = PARENT_SOURCE.replace("import torch", "import torch\nimport subprocess")
    asked: list[str] = []

    def is_known(digest: str) -> bool:
        asked.append(digest)
        return False

    agent = ScriptedAgent(Proposal(sneaky, "Shell out"), Proposal(CHILD_SOURCE, "Double LR"))
    refusals: list[tuple[int, str]] = []

    propose_checked(agent, context, is_known=is_known, on_attempt=lambda n, why: refusals.append((n, why)))

    assert asked == [variant_hash(CHILD_SOURCE)]
    ((_, reason),) = refusals
    assert reason.startswith("the static policy refused train.py: line 4: import_not_allowed: `subprocess`")


def test_an_oversized_file_and_an_empty_hypothesis_are_refused(context: ProposalContext) -> None:
    huge = PARENT_SOURCE + "#" * MAX_SOURCE_BYTES
    agent = ScriptedAgent(Proposal(huge, "Pad"), Proposal(CHILD_SOURCE, "   "))

    with pytest.raises(AgentError) as raised:
        propose_checked(agent, context, is_known=never_known, max_attempts=2)

    size = len(huge.encode())
    assert str(raised.value) == (
        "no acceptable proposal after 2 attempts: "
        f"1) train.py is {size} bytes, over the {MAX_SOURCE_BYTES}-byte limit; "
        "2) the hypothesis is empty; state the change in one line"
    )


def test_the_accepted_hypothesis_is_one_line(context: ProposalContext) -> None:
    agent = ScriptedAgent(Proposal(CHILD_SOURCE, "Double LR\n\nbecause the budget is short"))

    proposal = propose_checked(agent, context, is_known=never_known)

    assert proposal.hypothesis == "Double LR because the budget is short"


def test_usage_is_summed_over_every_attempt(context: ProposalContext) -> None:
    def spent(tokens: int, cost: float, attempts: int) -> AgentUsage:
        return AgentUsage(
            agent="scripted",
            model="m",
            input_tokens=tokens,
            output_tokens=tokens // 2,
            cache_read_tokens=tokens // 4,
            cache_write_tokens=tokens // 8,
            cost_usd=cost,
            attempts=attempts,
        )

    agent = ScriptedAgent(
        Proposal(PARENT_SOURCE, "Nothing", spent(800, 0.25, 2)),
        Proposal(CHILD_SOURCE, "Double LR", spent(1600, 0.5, 1)),
    )

    proposal = propose_checked(agent, context, is_known=never_known)

    assert proposal.usage == AgentUsage(
        agent="scripted",
        model="m",
        input_tokens=2400,
        output_tokens=1200,
        cache_read_tokens=600,
        cache_write_tokens=300,
        cost_usd=0.75,
        attempts=3,
    )


def test_an_agent_error_is_raised_at_once_without_more_attempts(context: ProposalContext) -> None:
    class Broke:
        name = "broke"
        calls = 0

        def propose(self, context: ProposalContext) -> Proposal:
            self.calls += 1
            raise AgentError("daily spending cap of $1.00 reached")

    agent = Broke()

    with pytest.raises(AgentError, match=r"^daily spending cap of \$1\.00 reached$"):
        propose_checked(agent, context, is_known=never_known)

    assert agent.calls == 1


def test_merge_usage_counts_proposals_without_usage_as_one_attempt_each() -> None:
    assert merge_usage([None], agent_name="offline") is None
    assert merge_usage([None, None], agent_name="offline") == AgentUsage(agent="offline", attempts=2)
    assert merge_usage([None, AgentUsage(agent="x", cost_usd=0.5)], agent_name="x") == AgentUsage(
        agent="x", cost_usd=0.5, attempts=2
    )
