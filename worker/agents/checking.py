"""The gate between an agent and the GPU: a proposal is checked before a second of training.

`propose_checked` asks the agent for a proposal and refuses it, with a reason the agent is shown,
if it would be wasted work: not Python, refused by the static policy (the coordinator would
reject it anyway), identical to its parent, or a file the coordinator already knows (someone
trained exactly this source). Checks run cheapest first; the network question comes last.

Feedback: an agent that has `revise(context, previous, reason)` is asked to fix its refused
proposal and is told why. Any other agent is asked afresh with a different seed
(`context.seed + attempt - 1`), which is how a seeded agent such as `offline` explores.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from shared.hashing import short_hash, variant_hash
from shared.protocol import MAX_SOURCE_BYTES, AgentUsage
from worker.agents.base import Agent, AgentError, Proposal, ProposalContext
from worker.agents.prompting import HYPOTHESIS_MAX_CHARS, one_line


@runtime_checkable
class RevisingAgent(Protocol):
    """An agent that can take a refusal reason and fix its previous proposal."""

    def revise(self, context: ProposalContext, previous: Proposal, reason: str) -> Proposal: ...


def propose_checked(
    agent: Agent,
    context: ProposalContext,
    *,
    is_known: Callable[[str], bool],
    max_attempts: int = 3,
    on_attempt: Callable[[int, str], None] | None = None,
) -> Proposal:
    """A proposal that passed every check, with its hypothesis on one line and usage summed.

    `is_known(variant_hash)` says whether the coordinator already has that variant. `on_attempt`
    is called with the attempt number (from 1) and the reason each time a proposal is refused.
    Raises AgentError naming every reason once `max_attempts` proposals were refused; an
    AgentError from the agent itself (no key, spending cap, API down) is raised at once, since
    asking again would meet the same wall.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    usages: list[AgentUsage | None] = []
    reasons: list[str] = []
    previous: Proposal | None = None
    for attempt in range(1, max_attempts + 1):
        proposal = _ask(
            agent, context, attempt=attempt, previous=previous, reason=reasons[-1] if reasons else None
        )
        usages.append(proposal.usage)
        reason = proposal_problem(proposal, context, is_known=is_known)
        if reason is None:
            return Proposal(
                source=proposal.source,
                hypothesis=one_line(proposal.hypothesis, limit=HYPOTHESIS_MAX_CHARS),
                usage=merge_usage(usages, agent_name=agent.name),
            )
        reasons.append(reason)
        if on_attempt is not None:
            on_attempt(attempt, reason)
        previous = proposal
    listed = "; ".join(f"{number}) {reason}" for number, reason in enumerate(reasons, 1))
    raise AgentError(f"no acceptable proposal after {max_attempts} attempts: {listed}")


def proposal_problem(
    proposal: Proposal, context: ProposalContext, *, is_known: Callable[[str], bool]
) -> str | None:
    """Why `proposal` must not be trained, in one line, or None when it may be."""
    source = proposal.source
    size = len(source.encode("utf-8"))
    if size > MAX_SOURCE_BYTES:
        return f"train.py is {size} bytes, over the {MAX_SOURCE_BYTES}-byte limit"
    if not proposal.hypothesis.strip():
        return "the hypothesis is empty; state the change in one line"
    try:
        ast.parse(source, filename="train.py")
    except SyntaxError as exc:
        return f"train.py is not valid Python: line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes; absurd nesting
        return f"train.py is not valid Python: {exc}"
    if source == context.parent_source:
        return "train.py is identical to its parent; change something"
    # The executor asks the same cache when the lease's run starts: the policy runs once per source.
    from worker.execution.gate import policy_report

    report = policy_report(source)
    if not report.ok:
        return f"the static policy refused train.py: {report.summary()}"
    digest = variant_hash(source)
    if is_known(digest):
        return f"variant {short_hash(digest)} is already known to the network; propose a different change"
    return None


def merge_usage(usages: Sequence[AgentUsage | None], *, agent_name: str) -> AgentUsage | None:
    """Token, cost and attempt totals over several proposals; a proposal without usage counts one attempt."""
    known = [usage for usage in usages if usage is not None]
    if not known and len(usages) <= 1:
        return None
    first = known[0] if known else AgentUsage(agent=agent_name)
    return AgentUsage(
        agent=first.agent,
        model=first.model,
        input_tokens=sum(usage.input_tokens for usage in known),
        output_tokens=sum(usage.output_tokens for usage in known),
        cache_read_tokens=sum(usage.cache_read_tokens for usage in known),
        cache_write_tokens=sum(usage.cache_write_tokens for usage in known),
        cost_usd=sum(usage.cost_usd for usage in known),
        attempts=sum(usage.attempts if usage is not None else 1 for usage in usages),
    )


def _ask(
    agent: Agent, context: ProposalContext, *, attempt: int, previous: Proposal | None, reason: str | None
) -> Proposal:
    if previous is None or reason is None:
        return agent.propose(context)
    if isinstance(agent, RevisingAgent):
        return agent.revise(context, previous, reason)
    return agent.propose(dataclasses.replace(context, seed=context.seed + attempt - 1))
