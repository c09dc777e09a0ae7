"""The claude agent inside the real worker daemon: the real SDK, a fake Messages API, the real coordinator.

Only training is a stand-in (test_daemon.StandInExecutor). What these prove is the worker's side of the
agent: an API that keeps failing, or proposals that keep failing the checks, cost one lease,
released with the reason, and the worker goes on to the next; the prompt is built from what the
coordinator published; the usage and estimated cost reach the signed run and the screen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.hashing import short_hash
from tests.agents.conftest import FakeMessagesAPI, Reply, api_error, submission
from tests.unit import test_daemon as setup
from tests.unit.test_daemon import BASELINE, TRACK, Coordinator, StandInExecutor, Volunteer
from worker.agents.claude import ClaudeAgent
from worker.agents.pricing import SpendLedger

coordinator = setup.coordinator
volunteer = setup.volunteer

CHILD = BASELINE.replace("LR = 0.004", "LR = 0.006")
HYPOTHESIS = "Raise LR to 0.006: the short budget rewards faster early progress"
# claude-sonnet-4-6 at $3 in, $15 out, $3.75 cache write per million tokens (conftest.usage defaults).
COST_OF_ONE_REPLY = 1200 * 3e-6 + 800 * 15e-6 + 3000 * 3.75e-6
FAILING = "the Anthropic API kept failing: HTTP 500 after 1 retries: Internal server error"


def claude(fake_api: FakeMessagesAPI, home: Path, notices: list[str]) -> ClaudeAgent:
    return ClaudeAgent(
        model="claude-sonnet-4-6",
        api_key="test-key",
        base_url=fake_api.base_url,
        max_retries=1,
        home=home,
        status_callback=notices.append,
    )


def server_error() -> Reply:
    return api_error(500, "api_error", "Internal server error", headers={"retry-after-ms": "1"})


def test_repeated_server_errors_release_the_lease_with_the_reason_and_the_worker_goes_on(
    coordinator: Coordinator,
    volunteer: Callable[[str], Volunteer],
    fake_api: FakeMessagesAPI,
    tmp_path: Path,
) -> None:
    alice = volunteer("alice")
    alice.daemon(executor=StandInExecutor(val_bpb=1.5), max_experiments=2).run()  # calibrate, one offline explore
    [(offline_hypothesis,)] = coordinator.query("select hypothesis from variants where parent_id is not null")
    fake_api.script(server_error(), server_error(), submission(CHILD, HYPOTHESIS))
    notices: list[str] = []
    executor = StandInExecutor(val_bpb=1.5)

    counters = alice.daemon(
        executor=executor, agent=claude(fake_api, tmp_path / "agent", notices), max_experiments=1
    ).run()

    # The first lease was handed back with the API's failure as the reason; the worker went on.
    assert (counters.leases, counters.released, counters.completed, counters.delivered) == (2, 1, 1, 1)
    explore_leases = coordinator.query("select state, release_reason from leases where kind = 'explore'")
    assert sorted(explore_leases, key=str) == [
        ("completed", None),  # the offline experiment
        ("completed", None),  # claude's, after the failure
        ("released", f"agent claude failed: {FAILING}"),
    ]
    assert f"WARNING agent claude failed: {FAILING}; lease released, pausing 2s" in alice.output.getvalue()
    assert "Anthropic API answered HTTP 500; retry 1 of 1 in 0.001s" in notices
    # Nothing lost: every run reached the coordinator, the outbox is empty, and the failed calls cost nothing.
    assert [call["source"] for call in executor.calls] == [CHILD]
    assert not list(alice.home.outbox_dir.glob("*.json"))
    assert coordinator.query("select count(*) from runs") == [(3,)]
    assert SpendLedger(tmp_path / "agent" / "spend.json").spent_today() == pytest.approx(COST_OF_ONE_REPLY)
    # Each request carried what the coordinator published: the log digest (the offline experiment).
    assert len(fake_api.requests) == 3
    for request in fake_api.requests:
        digest = request.body["messages"][0]["content"][1]["text"]
        assert f"discarded   +0.0000  {offline_hypothesis}" in digest
        assert "Make val_bpb go down." in request.body["system"][0]["text"]


def test_the_usage_and_cost_reach_the_signed_run_and_the_screen(
    coordinator: Coordinator,
    volunteer: Callable[[str], Volunteer],
    fake_api: FakeMessagesAPI,
    tmp_path: Path,
) -> None:
    alice = volunteer("alice")
    alice.daemon(executor=StandInExecutor(val_bpb=1.5), max_experiments=1).run()  # calibrate
    fake_api.script(submission(CHILD, HYPOTHESIS))

    alice.daemon(
        executor=StandInExecutor(val_bpb=1.5), agent=claude(fake_api, tmp_path / "agent", []), max_experiments=1
    ).run()

    [(hypothesis, agent)] = coordinator.query(
        "select v.hypothesis, r.agent from runs r join variants v on v.id = r.variant_id where r.kind = 'explore'"
    )
    usage = agent if isinstance(agent, dict) else json.loads(agent)
    assert hypothesis == HYPOTHESIS
    assert usage == {
        "agent": "claude",
        "model": "claude-sonnet-4-6",
        "input_tokens": 1200,
        "output_tokens": 800,
        "cache_read_tokens": 0,
        "cache_write_tokens": 3000,
        "cost_usd": round(COST_OF_ONE_REPLY, 6),
        "attempts": 1,
    }
    assert (
        f"agent: proposed: {HYPOTHESIS} [claude-sonnet-4-6: 1,200 in (+3,000 cache: 0 read) / 800 out"
        f" tokens, ~${COST_OF_ONE_REPLY:.4f}]"
    ) in alice.output.getvalue()


def test_proposals_refused_by_the_checks_go_back_to_the_model_three_times_then_the_lease_is_released(
    coordinator: Coordinator,
    volunteer: Callable[[str], Volunteer],
    fake_api: FakeMessagesAPI,
    tmp_path: Path,
) -> None:
    alice = volunteer("alice")
    alice.daemon(executor=StandInExecutor(val_bpb=1.5), max_experiments=2).run()  # calibrate, one offline explore
    [(known_hash,)] = coordinator.query("select hash from variants where parent_id is not null")
    known_source = coordinator.get(f"/v1/variants/{known_hash}?track_id={TRACK}")["source"]
    forbidden = BASELINE + "\nimport os\n"
    fake_api.script(
        submission(BASELINE, "No change at all", tool_id="toolu_same"),
        submission(forbidden, "Look around the file system", tool_id="toolu_os"),
        submission(known_source, "The offline agent's idea again", tool_id="toolu_known"),
        submission(CHILD, HYPOTHESIS),  # the next lease
    )
    executor = StandInExecutor(val_bpb=1.5)

    counters = alice.daemon(
        executor=executor, agent=claude(fake_api, tmp_path / "agent", []), max_experiments=1
    ).run()

    same = "train.py is identical to its parent; change something"
    import_line = BASELINE.count("\n") + 2
    policy = f"the static policy refused train.py: line {import_line}: import_not_allowed: `os`"
    known = f"variant {short_hash(known_hash)} is already known to the network; propose a different change"
    [(reason,)] = coordinator.query("select release_reason from leases where state = 'released'")
    assert reason.startswith(
        f"agent claude failed: no acceptable proposal after 3 attempts: 1) {same}; 2) {policy}"
    )
    assert reason.endswith(f"; 3) {known}")
    # Each refusal went back to the model, in the same conversation, as the error result of its tool call.
    feedback = [request.body["messages"][-1]["content"][0] for request in fake_api.requests[1:3]]
    assert [(item["tool_use_id"], item["is_error"]) for item in feedback] == [
        ("toolu_same", True),
        ("toolu_os", True),
    ]
    assert feedback[0]["content"].startswith(f"This variant was refused before training: {same}")
    assert feedback[1]["content"].startswith(f"This variant was refused before training: {policy}")
    # None of the refused files was trained; the worker went on and trained the next lease's proposal.
    assert [call["source"] for call in executor.calls] == [CHILD]
    assert (counters.leases, counters.released, counters.completed) == (2, 1, 1)
