"""The claude agent against a fake Messages API, through the real anthropic SDK."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from shared.protocol import AgentUsage
from tests.agents.conftest import (
    AUTHORS,
    CHILD_SOURCE,
    PARENT_SOURCE,
    FakeMessagesAPI,
    RecordedRequest,
    api_error,
    message,
    submission,
    tool_call,
)
from worker.agents.base import AgentError, ProposalContext
from worker.agents.checking import propose_checked
from worker.agents.claude import SUBMIT_TOOL, ClaudeAgent, choose_agent
from worker.agents.pricing import SpendLedger

EPHEMERAL = {"type": "ephemeral"}
FORCED = {"type": "tool", "name": "submit_variant"}
HYPOTHESIS = "Double the learning rate to 0.02 to converge faster in the short budget"
# claude-sonnet-4-6 at $3 in, $15 out, $3.75 cache write, $0.30 cache read per million tokens.
COST_OF_ONE_DEFAULT_REPLY = 1200 * 3e-6 + 800 * 15e-6 + 3000 * 3.75e-6


def make_agent(api: FakeMessagesAPI, home: Path, notices: list[str], **options: Any) -> ClaudeAgent:
    settings: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "api_key": "test-key",
        "base_url": api.base_url,
        "max_retries": 0,
        "home": home,
        "status_callback": notices.append,
    }
    settings.update(options)
    return ClaudeAgent(**settings)


def text_of(block: dict[str, Any]) -> str:
    assert block["type"] == "text"
    text: str = block["text"]
    return text


def assert_sends_the_prompt(request: RecordedRequest, *, model: str, tool_choice: dict[str, Any]) -> None:
    """The request carries the tool, the cached prefix, the parent, the lineage and the log digest."""
    body = request.body
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == "Bearer test-key"  # how this SDK version sends the key
    assert body["model"] == model
    assert body["stream"] is True
    assert body["tools"] == [SUBMIT_TOOL]
    assert body["tools"][0]["input_schema"]["properties"]["source"]["type"] == "string"
    assert body["tools"][0]["input_schema"]["properties"]["hypothesis"]["type"] == "string"
    assert body["tools"][0]["input_schema"]["required"] == ["hypothesis", "source"]
    assert body["tool_choice"] == tool_choice

    (system,) = body["system"]
    assert system["cache_control"] == EPHEMERAL
    assert "Research brief for track cpu-tiny" in text_of(system)
    assert "Lower val_bpb on the cpu-tiny track within 60 seconds of CPU time." in text_of(system)

    opening = body["messages"][0]
    assert opening["role"] == "user"
    parent, digest, ask = opening["content"]
    assert parent["cache_control"] == EPHEMERAL
    assert PARENT_SOURCE in text_of(parent)
    assert "1. Double the batch size to 16\n2. Add an output head bias" in text_of(parent)
    assert digest["cache_control"] == EPHEMERAL
    assert "rejected    +0.0100  Use a cosine learning-rate decay to zero" in text_of(digest)
    assert "[not reproduced: verifiers measured +0.0100]" in text_of(digest)
    assert "- Double the batch size to 16 (-0.0200)" in text_of(digest)
    assert "1. bbbbbbbbbb val_bpb 1.3000 (-0.0500 vs baseline)  Double the batch size to 16" in text_of(digest)
    assert not any(author in json.dumps(body) for author in AUTHORS)
    assert "cache_control" not in ask
    assert "(seed 7)" in text_of(ask)


def test_a_good_variant_becomes_a_proposal_with_usage_and_cost(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(submission(CHILD_SOURCE, HYPOTHESIS))
    agent = make_agent(fake_api, tmp_path, [])

    proposal = agent.propose(context)

    assert proposal.source == CHILD_SOURCE
    assert proposal.hypothesis == HYPOTHESIS
    assert proposal.usage == AgentUsage(
        agent="claude",
        model="claude-sonnet-4-6",
        input_tokens=1200,
        output_tokens=800,
        cache_read_tokens=0,
        cache_write_tokens=3000,
        cost_usd=round(COST_OF_ONE_DEFAULT_REPLY, 6),
        attempts=1,
    )
    (request,) = fake_api.requests
    assert_sends_the_prompt(request, model="claude-sonnet-4-6", tool_choice=FORCED)
    assert SpendLedger(tmp_path / "spend.json").spent_today() == pytest.approx(COST_OF_ONE_DEFAULT_REPLY)


def test_a_repeated_proposal_from_the_same_parent_sends_the_same_cached_prefix(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(
        submission(CHILD_SOURCE, HYPOTHESIS),
        submission(CHILD_SOURCE, HYPOTHESIS, cache_write=0, cache_read=3000),
    )
    agent = make_agent(fake_api, tmp_path, [])

    agent.propose(context)
    second = agent.propose(ProposalContext(**{**context.__dict__, "seed": 8}))

    first_body, second_body = (request.body for request in fake_api.requests)
    assert second_body["system"] == first_body["system"]
    assert second_body["messages"][0]["content"][:2] == first_body["messages"][0]["content"][:2]
    assert second_body["messages"][0]["content"][2] != first_body["messages"][0]["content"][2]
    assert second.usage is not None
    assert (second.usage.cache_read_tokens, second.usage.cache_write_tokens) == (3000, 0)


def test_a_malformed_tool_call_is_sent_back_as_an_error_and_the_next_reply_is_used(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(
        message([tool_call({"hypothesis": "Raise the learning rate"}, tool_id="toolu_bad")]),
        submission(CHILD_SOURCE, HYPOTHESIS, tool_id="toolu_good"),
    )
    notices: list[str] = []
    agent = make_agent(fake_api, tmp_path, notices)

    proposal = agent.propose(context)

    assert proposal.source == CHILD_SOURCE
    assert proposal.usage is not None and proposal.usage.attempts == 2
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (2400, 1600)
    first, second = fake_api.requests
    assert_sends_the_prompt(first, model="claude-sonnet-4-6", tool_choice=FORCED)
    assert_sends_the_prompt(second, model="claude-sonnet-4-6", tool_choice=FORCED)
    _, replayed_reply, feedback = second.body["messages"]
    assert replayed_reply == {
        "role": "assistant",
        "content": [tool_call({"hypothesis": "Raise the learning rate"}, tool_id="toolu_bad")],
    }
    assert feedback == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_bad",
                "is_error": True,
                "content": "submit_variant is missing 'source', the complete new train.py. "
                "Call submit_variant with the complete train.py and a one-line hypothesis.",
            }
        ],
    }
    assert "reply 1 was unusable: submit_variant is missing 'source', the complete new train.py" in notices


def test_thinking_blocks_are_replayed_unchanged_when_a_reply_is_sent_back(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    thinking = {
        "type": "thinking",
        "thinking": "The log says batch 16 won; try LR next.",
        "signature": "c2lnbmF0dXJl",
    }
    bad_call = tool_call({"source": CHILD_SOURCE}, tool_id="toolu_bad")
    fake_api.script(message([thinking, bad_call]), submission(CHILD_SOURCE, HYPOTHESIS))
    agent = make_agent(fake_api, tmp_path, [])

    agent.propose(context)

    replayed = fake_api.requests[1].body["messages"][1]
    assert replayed == {"role": "assistant", "content": [thinking, bad_call]}
    assert (
        fake_api.requests[1]
        .body["messages"][2]["content"][0]["content"]
        .startswith("submit_variant is missing 'hypothesis', one line saying what changed and why.")
    )


def test_a_reply_without_a_tool_call_is_answered_with_text_asking_for_the_tool(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(
        message([{"type": "text", "text": "I would raise the learning rate."}], stop_reason="end_turn"),
        submission(CHILD_SOURCE, HYPOTHESIS),
    )
    agent = make_agent(fake_api, tmp_path, [])

    proposal = agent.propose(context)

    assert proposal.source == CHILD_SOURCE
    feedback = fake_api.requests[1].body["messages"][2]
    assert feedback == {
        "role": "user",
        "content": [
            {
                "type": "text",
                "text": "your reply did not call submit_variant. "
                "Call submit_variant with the complete train.py and a one-line hypothesis.",
            }
        ],
    }


def test_malformed_replies_stop_after_the_bounded_number_of_fixes(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(*(message([tool_call({"hypothesis": "x", "source": "  "})]) for _ in range(3)))
    agent = make_agent(fake_api, tmp_path, [], max_reply_fixes=2)

    with pytest.raises(AgentError) as raised:
        agent.propose(context)

    assert str(raised.value) == (
        "claude-sonnet-4-6 gave no usable submit_variant call in 3 replies: "
        "submit_variant is missing 'source', the complete new train.py"
    )
    assert len(fake_api.requests) == 3


def test_a_policy_violation_is_fed_back_and_the_revised_variant_is_accepted(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    forbidden = PARENT_SOURCE + '\nimport os\n\nos.system("curl example.com")\n'
    fake_api.script(
        submission(forbidden, "Fetch a better dataset", tool_id="toolu_first"),
        submission(CHILD_SOURCE, HYPOTHESIS, tool_id="toolu_second"),
    )
    agent = make_agent(fake_api, tmp_path, [])
    refusals: list[tuple[int, str]] = []
    asked: list[str] = []

    def is_known(digest: str) -> bool:
        asked.append(digest)
        return False

    proposal = propose_checked(
        agent, context, is_known=is_known, on_attempt=lambda n, why: refusals.append((n, why))
    )

    assert proposal.source == CHILD_SOURCE
    assert proposal.usage is not None and proposal.usage.attempts == 2
    assert proposal.usage.cost_usd == pytest.approx(2 * COST_OF_ONE_DEFAULT_REPLY)
    ((attempt, reason),) = refusals
    assert attempt == 1
    import_line = PARENT_SOURCE.count("\n") + 2
    assert reason.startswith(
        f"the static policy refused train.py: line {import_line}: import_not_allowed: `os`"
    )
    assert len(asked) == 1  # only the accepted file reaches the coordinator question
    first, second = fake_api.requests
    assert_sends_the_prompt(first, model="claude-sonnet-4-6", tool_choice=FORCED)
    assert_sends_the_prompt(second, model="claude-sonnet-4-6", tool_choice=FORCED)
    _, first_reply, feedback = second.body["messages"]
    assert first_reply["content"][0]["input"]["source"] == forbidden
    (result,) = feedback["content"]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == "toolu_first"
    assert result["is_error"] is True
    assert result["content"].startswith(f"This variant was refused before training: {reason}\n")


def test_a_rate_limit_is_retried_by_the_sdk_and_reported_on_screen(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(
        api_error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit",
            headers={"retry-after": "0"},
        ),
        submission(CHILD_SOURCE, HYPOTHESIS),
    )
    notices: list[str] = []
    agent = make_agent(fake_api, tmp_path, notices, max_retries=2)

    proposal = agent.propose(context)

    assert proposal.source == CHILD_SOURCE
    assert len(fake_api.requests) == 2
    assert fake_api.requests[0].body == fake_api.requests[1].body
    assert "Anthropic API answered HTTP 429; retry 1 of 2 after a short backoff" in notices


def test_repeated_server_errors_end_in_a_clear_agent_error(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(
        *(
            api_error(500, "api_error", "Internal server error", headers={"retry-after-ms": "1"})
            for _ in range(3)
        )
    )
    notices: list[str] = []
    agent = make_agent(fake_api, tmp_path, notices, max_retries=2)

    with pytest.raises(AgentError) as raised:
        agent.propose(context)

    assert (
        str(raised.value) == "the Anthropic API kept failing: HTTP 500 after 2 retries: Internal server error"
    )
    assert len(fake_api.requests) == 3
    assert [line for line in notices if line.startswith("Anthropic API answered")] == [
        "Anthropic API answered HTTP 500; retry 1 of 2 in 0.001s",
        "Anthropic API answered HTTP 500; retry 2 of 2 in 0.001s",
    ]


def test_an_unreachable_api_is_retried_then_reported(tmp_path: Path, context: ProposalContext) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    notices: list[str] = []
    agent = ClaudeAgent(
        model="claude-sonnet-4-6",
        api_key="test-key",
        base_url=f"http://127.0.0.1:{closed_port}",
        max_retries=1,
        home=tmp_path,
        status_callback=notices.append,
    )

    with pytest.raises(AgentError, match=r"^could not reach the Anthropic API after 1 retries: "):
        agent.propose(context)

    [notice] = [line for line in notices if line.startswith("could not reach")]
    said = re.fullmatch(r"could not reach the Anthropic API \((.+)\); retry 1 of 1", notice)
    assert said is not None, notice
    # The SDK's own words: older releases say only "Connection error.", newer ones name the address.
    assert said[1] == "Connection error." or f"127.0.0.1:{closed_port}" in said[1], notice


def test_a_refused_key_is_reported_without_retrying(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(api_error(401, "authentication_error", "invalid x-api-key"))
    agent = make_agent(fake_api, tmp_path, [], max_retries=2)

    with pytest.raises(AgentError) as raised:
        agent.propose(context)

    assert (
        str(raised.value) == "the Anthropic API refused the key in ANTHROPIC_API_KEY (401): invalid x-api-key"
    )
    assert len(fake_api.requests) == 1


def test_the_daily_spending_cap_refuses_before_contacting_the_api(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    SpendLedger(tmp_path / "spend.json").record(5.0)
    agent = make_agent(fake_api, tmp_path, [], max_usd_per_day=5.0)

    with pytest.raises(AgentError) as raised:
        agent.propose(context)

    assert str(raised.value).startswith("daily spending cap of $5.00 reached ($5.00 spent today, UTC)")
    assert fake_api.requests == []


def test_the_spending_cap_counts_what_this_agent_spent(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(submission(CHILD_SOURCE, HYPOTHESIS), submission(CHILD_SOURCE, HYPOTHESIS))
    agent = make_agent(fake_api, tmp_path, [], max_usd_per_day=0.02)

    agent.propose(context)
    with pytest.raises(AgentError, match=r"^daily spending cap of \$0\.02 reached"):
        agent.propose(context)

    assert len(fake_api.requests) == 1
    ledger = json.loads((tmp_path / "spend.json").read_text())
    assert list(ledger["usd_by_utc_day"].values()) == [pytest.approx(COST_OF_ONE_DEFAULT_REPLY)]


def test_models_that_refuse_a_forced_tool_are_asked_for_it_by_prompt(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(submission(CHILD_SOURCE, HYPOTHESIS))
    agent = make_agent(fake_api, tmp_path, [], model="claude-sonnet-5-5")

    agent.propose(context)

    assert_sends_the_prompt(fake_api.requests[0], model="claude-sonnet-5-5", tool_choice={"type": "auto"})


def test_a_model_that_answers_400_to_a_forced_tool_is_switched_to_auto(
    fake_api: FakeMessagesAPI, tmp_path: Path, context: ProposalContext
) -> None:
    fake_api.script(
        api_error(
            400, "invalid_request_error", "tool_choice: forcing a tool is not supported with this model"
        ),
        submission(CHILD_SOURCE, HYPOTHESIS),
        submission(CHILD_SOURCE, HYPOTHESIS),
    )
    notices: list[str] = []
    agent = make_agent(fake_api, tmp_path, notices, model="claude-unlisted-9")

    agent.propose(context)
    agent.propose(context)

    assert [request.body["tool_choice"] for request in fake_api.requests] == [
        FORCED,
        {"type": "auto"},
        {"type": "auto"},
    ]
    assert "claude-unlisted-9 does not accept a forced tool; asking for submit_variant by prompt" in notices


def test_the_agent_without_a_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    with pytest.raises(
        AgentError, match=r"^agent 'claude' needs an Anthropic API key: set ANTHROPIC_API_KEY$"
    ):
        ClaudeAgent()


def test_choose_agent_falls_back_to_offline_and_says_why_without_a_key() -> None:
    for env in ({}, {"ANTHROPIC_API_KEY": "  "}):
        name, message = choose_agent("claude", env)
        assert name == "offline"
        assert message == (
            "agent 'claude' needs an Anthropic API key, but ANTHROPIC_API_KEY is not set; using the "
            "'offline' agent instead (it tunes train.py's hyperparameters without a model). "
            "Set ANTHROPIC_API_KEY and restart the worker to use claude."
        )


def test_choose_agent_keeps_the_requested_agent_when_it_can_run() -> None:
    assert choose_agent("claude", {"ANTHROPIC_API_KEY": "sk-test"}) == ("claude", None)
    assert choose_agent("offline", {}) == ("offline", None)
    assert choose_agent("command", {}) == ("command", None)
