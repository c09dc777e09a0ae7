"""What the daemon tells the offline agent: the track's hardware and the log of the parent's lineage.

Runs the real daemon against the real coordinator app (the fixtures of test_daemon.py); only
training is a stand-in.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.hashing import variant_hash
from shared.protocol import LogEntry
from tests.unit import test_daemon as setup
from tests.unit.test_daemon import BASELINE, TRACK, URL, Coordinator, StandInExecutor, Volunteer
from worker.agents.base import Proposal, ProposalContext
from worker.agents.offline import OfflineAgent
from worker.client import CoordinatorClient

coordinator = setup.coordinator
volunteer = setup.volunteer


class RecordingAgent:
    """The guided offline agent, keeping every context it was given."""

    name = "offline"

    def __init__(self) -> None:
        self.contexts: list[ProposalContext] = []
        self._agent = OfflineAgent()

    def propose(self, context: ProposalContext) -> Proposal:
        self.contexts.append(context)
        return self._agent.propose(context)


def hypotheses_newest_first(coordinator: Coordinator) -> list[str]:
    rows = coordinator.query("select hypothesis from variants where parent_id is not null order by id desc")
    return [hypothesis for (hypothesis,) in rows]


def test_the_agent_sees_the_track_hardware_and_every_experiment_once_newest_first_and_repeats_none(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")
    alice.daemon(executor=StandInExecutor(val_bpb=1.5), max_experiments=4).run()  # calibrate, then 3 explores
    agent = RecordingAgent()

    alice.daemon(executor=StandInExecutor(val_bpb=1.5), agent=agent, max_experiments=1).run()

    [context] = agent.contexts
    earlier = hypotheses_newest_first(coordinator)[1:]
    assert len(earlier) == 3
    assert context.hardware_class == "cpu"
    assert [entry["hypothesis"] for entry in context.research_log] == earlier
    assert hypotheses_newest_first(coordinator)[0] not in earlier


def test_experiments_on_the_parents_ancestors_reach_the_agent_and_the_lineage_filter_keeps_only_them(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice_executor = StandInExecutor(val_bpb=1.5)
    volunteer("alice").daemon(executor=alice_executor, max_experiments=2).run()  # calibrate; one discarded
    alice_executor.val_bpb, alice_executor.baseline_bpb = 1.2, 1.5
    volunteer("alice").daemon(executor=alice_executor, max_experiments=1).run()  # a candidate
    bob = StandInExecutor(val_bpb=1.21, baseline_bpb=1.5)
    volunteer("bob").daemon(executor=bob, account="bob", max_experiments=1).run()
    [(child_hash,)] = coordinator.query(
        "select hash from variants where status = 'verified' and parent_id is not null"
    )
    agent = RecordingAgent()

    volunteer("alice").daemon(executor=StandInExecutor(val_bpb=1.5), agent=agent, max_experiments=1).run()

    # One ask, or more when a proposal lands on a variant already known (a change undone): each
    # ask gets the same context.
    context = agent.contexts[0]
    assert {c.parent_hash for c in agent.contexts} == {child_hash}
    assert {e["parent_hash"] for e in context.research_log} == {variant_hash(BASELINE)}
    with CoordinatorClient(URL, transport=volunteer("reader").transport) as client:
        from_child = [e for e in client.research_log(TRACK, lineage=child_hash).entries if isinstance(e, LogEntry)]
        from_baseline = client.research_log(TRACK, lineage=variant_hash(BASELINE)).entries
    assert len(from_child) == 3  # the two from the baseline and the one just made from the child
    assert [e.hash for e in from_baseline] == [e.hash for e in from_child if e.parent_hash != child_hash]
