"""The agent interface: what an agent is given, what it returns, and how one is built by name."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.protocol import AgentUsage


class AgentError(Exception):
    """The agent could not produce a usable proposal; the message says why, in one line."""


@dataclass
class ProposalContext:
    """Everything an agent may use to propose a child of `parent_source`.

    `research_log` entries are shaped like shared.protocol.LogEntry and `leaderboard` entries like
    LeaderboardEntry (JSON dicts), so agents need not import the protocol.
    """

    track_id: str
    brief: str
    parent_hash: str
    parent_source: str
    lineage_hypotheses: list[str] = field(default_factory=list)  # the parent's first, then its ancestors'
    research_log: list[dict[str, Any]] = field(default_factory=list)  # newest first
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0  # agents that draw random numbers draw them from this, so a lease is reproducible
    hardware_class: str | None = None  # the track's (e.g. "cpu"); None when unknown


@dataclass
class Proposal:
    source: str  # the complete new train.py
    hypothesis: str  # one line, like a commit message
    usage: AgentUsage | None = None


class Agent(Protocol):
    name: str

    def propose(self, context: ProposalContext) -> Proposal: ...


# name -> "module:factory". Imported on demand, so an agent's dependencies load only when it is used.
_REGISTRY: dict[str, str] = {
    "offline": "worker.agents.offline:OfflineAgent",
    "claude": "worker.agents.claude:ClaudeAgent",
    "command": "worker.agents.command:CommandAgent",
}


def agent_names() -> list[str]:
    return sorted(_REGISTRY)


def make_agent(name: str, **options: Any) -> Agent:
    """Build the agent registered as `name` with its constructor `options`."""
    target = _REGISTRY.get(name)
    if target is None:
        raise AgentError(f"unknown agent {name!r}; choose one of: {', '.join(agent_names())}")
    module_name, _, attribute = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise AgentError(f"agent {name!r} is not available in this installation: {exc}") from exc
    try:
        agent: Agent = factory(**options)
    except TypeError as exc:
        raise AgentError(f"agent {name!r} cannot be built with these options: {exc}") from exc
    return agent
