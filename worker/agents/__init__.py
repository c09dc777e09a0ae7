"""Agents propose a new train.py from a parent variant; the daemon trains what they propose.

`make_agent(name, **options)` builds one by name; see `base.py` for the interface.
"""

from worker.agents.base import Agent, AgentError, Proposal, ProposalContext, agent_names, make_agent

__all__ = ["Agent", "AgentError", "Proposal", "ProposalContext", "agent_names", "make_agent"]
