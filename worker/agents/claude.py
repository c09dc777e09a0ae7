"""The `claude` agent: asks a Claude model, through the Anthropic Messages API, for a new train.py.

One proposal is one short conversation. The prompt is, in this order: the `submit_variant` tool;
a system block with the contract rules and the track brief; one user turn holding the parent
source with its lineage, the research-log digest with the leaderboard's top entries, and a request
naming a direction picked by the lease's seed. The system block, the parent block and the digest
block carry cache_control breakpoints, so proposals from the same parent (and, further back, the
same track) reuse the prompt cache. The model must answer by calling `submit_variant` (forced
with tool_choice where the model allows it); an unusable answer is sent back to it, with what is
wrong, a bounded number of times.

Replies are streamed, so `timeout_s` bounds a stall, not the time a long file takes to write.
Retries of 429/5xx/connection failures are the SDK's own (`max_retries`, honouring retry-after).
A client middleware sees every HTTP attempt and reports each coming retry through
`status_callback`, so a volunteer sees why the worker is waiting. Every reply's estimated cost is
added to the worker's spend ledger, and `max_usd_per_day` is checked before each request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
from anthropic.types import Message, ToolUseBlock

from shared.hashing import short_hash, variant_hash
from shared.protocol import AgentUsage
from worker.agents.base import AgentError, Proposal, ProposalContext
from worker.agents.pricing import SpendLedger, estimate_cost_usd, price_for
from worker.agents.prompting import (
    HYPOTHESIS_MAX_CHARS,
    VARIANT_RULES,
    exploration_focus,
    leaderboard_text,
    lineage_text,
    one_line,
    research_log_digest,
)

DEFAULT_MODEL = "claude-sonnet-5-5"
API_KEY_ENV = "ANTHROPIC_API_KEY"
SUBMIT_TOOL_NAME = "submit_variant"
SPEND_LEDGER_FILE = "spend.json"

SUBMIT_TOOL: dict[str, Any] = {
    "name": SUBMIT_TOOL_NAME,
    "description": (
        "Submit the new train.py for training. Call this exactly once per reply, with the complete "
        "file and a one-line hypothesis."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "hypothesis": {
                "type": "string",
                "description": "One line under 200 characters, like a commit message: the change and why val_bpb should drop.",
            },
            "source": {
                "type": "string",
                "description": "The complete new train.py, every line of it; not a diff.",
            },
        },
        "required": ["hypothesis", "source"],
        "additionalProperties": False,
    },
}

# These models answer a request that forces a tool with HTTP 400, so they get tool_choice "auto"
# and the prompt asks for the tool. A model not listed here that refuses is detected on its first
# refusal and switched the same way.
_MODELS_REFUSING_FORCED_TOOLS = ("claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1")
_EPHEMERAL = {"type": "ephemeral"}
_RETRYABLE_STATUS = frozenset({408, 409, 429})

_log = logging.getLogger(__name__)


def choose_agent(requested: str, env: Mapping[str, str]) -> tuple[str, str | None]:
    """The agent to run for `requested`, and a message to show when it had to be another one.

    `claude` without an API key falls back to `offline`, so `worker join --agent claude` on a
    machine with no key still contributes, and says so rather than failing after joining.
    """
    if requested == "claude" and not env.get(API_KEY_ENV, "").strip():
        return "offline", (
            f"agent 'claude' needs an Anthropic API key, but {API_KEY_ENV} is not set; using the "
            f"'offline' agent instead (it tunes train.py's hyperparameters without a model). "
            f"Set {API_KEY_ENV} and restart the worker to use claude."
        )
    return requested, None


@dataclass
class _Conversation:
    """The exchange that produced the last accepted proposal, kept so `revise` can continue it."""

    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    tool_use_ids: list[str]  # every tool call in the last reply; each needs a tool_result
    source_hash: str


@dataclass
class _Tally:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    replies: int = 0


class ClaudeAgent:
    """Proposes variants with a Claude model; see the module docstring for the conversation."""

    name = "claude"

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 4,
        max_tokens: int = 32_000,
        max_reply_fixes: int = 2,
        max_usd_per_day: float | None = None,
        home: Path | None = None,
        status_callback: Callable[[str], None] | None = None,
    ) -> None:
        """Build the agent; `api_key` defaults to $ANTHROPIC_API_KEY.

        `max_reply_fixes` bounds how often an unusable reply is sent back. `home` holds spend.json;
        without it, spending is tracked in memory only. `status_callback` receives one-line
        progress and retry notices for the display.
        """
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        if not key.strip():
            raise AgentError(f"agent 'claude' needs an Anthropic API key: set {API_KEY_ENV}")
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.max_reply_fixes = max_reply_fixes
        self.max_usd_per_day = max_usd_per_day
        self._status_callback = status_callback
        self._ledger = SpendLedger(home / SPEND_LEDGER_FILE if home is not None else None)
        self._force_tool = not model.startswith(_MODELS_REFUSING_FORCED_TOOLS)
        self._conversation: _Conversation | None = None
        if price_for(model) is None:
            self._notify(
                f"no price is on file for model {model}; its cost is estimated at the dearest listed "
                "rate (see worker/agents/pricing.py)",
                warning=True,
            )
        self._client = anthropic.Anthropic(
            api_key=key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            middleware=[
                _RetryNotices(max_retries=max_retries, notify=lambda text: self._notify(text, warning=True))
            ],
        )

    def propose(self, context: ProposalContext) -> Proposal:
        return self._run(_system_blocks(context), [_opening_message(context, refusal=None)])

    def revise(self, context: ProposalContext, previous: Proposal, reason: str) -> Proposal:
        """Tell the model why `previous` was refused and ask for a fixed file, in the same conversation."""
        conversation = self._conversation
        if conversation is None or conversation.source_hash != variant_hash(previous.source):
            return self._run(_system_blocks(context), [_opening_message(context, refusal=reason)])
        feedback = (
            f"This variant was refused before training: {reason}\n"
            f"Fix it and call {SUBMIT_TOOL_NAME} again with the complete corrected train.py."
        )
        messages = [*conversation.messages, _tool_feedback(conversation.tool_use_ids, feedback)]
        return self._run(conversation.system, messages)

    def close(self) -> None:
        self._client.close()

    def _run(self, system: list[dict[str, Any]], messages: list[dict[str, Any]]) -> Proposal:
        tally = _Tally()
        problem = ""
        for reply_number in range(1, self.max_reply_fixes + 2):
            self._notify(f"asking {self.model} for a variant (reply {reply_number})")
            message = self._ask_model(system, messages, tally)
            messages = [
                *messages,
                {"role": "assistant", "content": [_as_param(block) for block in message.content]},
            ]
            tool_use_ids = [block.id for block in message.content if isinstance(block, ToolUseBlock)]
            submission, problem = _read_submission(message, max_tokens=self.max_tokens)
            if submission is not None:
                source, hypothesis = submission
                self._conversation = _Conversation(system, messages, tool_use_ids, variant_hash(source))
                return Proposal(source=source, hypothesis=hypothesis, usage=self._usage(tally))
            self._notify(f"reply {reply_number} was unusable: {problem}", warning=True)
            feedback = (
                f"{problem}. Call {SUBMIT_TOOL_NAME} with the complete train.py and a one-line hypothesis."
            )
            messages = [*messages, _tool_feedback(tool_use_ids, feedback)]
        raise AgentError(
            f"{self.model} gave no usable {SUBMIT_TOOL_NAME} call in {self.max_reply_fixes + 1} replies: {problem}"
        )

    def _ask_model(
        self, system: list[dict[str, Any]], messages: list[dict[str, Any]], tally: _Tally
    ) -> Message:
        self._check_spending_cap()
        tool_choice = {"type": "tool", "name": SUBMIT_TOOL_NAME} if self._force_tool else {"type": "auto"}
        try:
            # Streamed because a whole train.py (plus thinking) can take minutes to write: bytes keep
            # flowing, so `timeout_s` bounds a stall rather than the length of a good answer. The
            # prompt is kept as plain JSON dicts (`revise` replays it), which the SDK's TypedDict
            # signatures cannot see through.
            with self._client.messages.stream(
                model=self.model,
                max_tokens=self.max_tokens,
                system=system,  # type: ignore[arg-type]
                messages=messages,  # type: ignore[arg-type]
                tools=[SUBMIT_TOOL],  # type: ignore[list-item]
                tool_choice=tool_choice,  # type: ignore[arg-type]
            ) as stream:
                message = stream.get_final_message()
        except anthropic.BadRequestError as exc:
            if self._force_tool and "tool_choice" in str(exc.api_message or exc.message):
                self._force_tool = False
                self._notify(
                    f"{self.model} does not accept a forced tool; asking for {SUBMIT_TOOL_NAME} by prompt",
                    warning=True,
                )
                return self._ask_model(system, messages, tally)
            raise self._failure(exc) from exc
        except anthropic.APIError as exc:
            raise self._failure(exc) from exc
        self._count(message, tally)
        return message

    def _notify(self, text: str, *, warning: bool = False) -> None:
        # Without a display to report to, retries and fallbacks still reach stderr (logging's
        # last-resort handler prints warnings), while routine progress stays quiet.
        if self._status_callback is not None:
            self._status_callback(text)
        else:
            _log.log(logging.WARNING if warning else logging.INFO, text)

    def _check_spending_cap(self) -> None:
        if self.max_usd_per_day is None:
            return
        try:
            spent = self._ledger.spent_today()
        except ValueError as exc:
            raise AgentError(str(exc)) from exc
        if spent >= self.max_usd_per_day:
            raise AgentError(
                f"daily spending cap of ${self.max_usd_per_day:.2f} reached (${spent:.2f} spent today, UTC); "
                "claude resumes after midnight UTC or with a higher cap"
            )

    def _count(self, message: Message, tally: _Tally) -> None:
        usage = message.usage
        cache_write = usage.cache_creation_input_tokens or 0
        cache_read = usage.cache_read_input_tokens or 0
        cost = estimate_cost_usd(
            self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_tokens=cache_write,
            cache_read_tokens=cache_read,
        )
        tally.input_tokens += usage.input_tokens
        tally.output_tokens += usage.output_tokens
        tally.cache_write_tokens += cache_write
        tally.cache_read_tokens += cache_read
        tally.cost_usd += cost
        tally.replies += 1
        try:
            self._ledger.record(cost)
        except (OSError, ValueError) as exc:
            raise AgentError(f"could not record spending in {self._ledger.path}: {exc}") from exc

    def _usage(self, tally: _Tally) -> AgentUsage:
        return AgentUsage(
            agent=self.name,
            model=self.model,
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            cache_read_tokens=tally.cache_read_tokens,
            cache_write_tokens=tally.cache_write_tokens,
            cost_usd=round(tally.cost_usd, 6),
            attempts=tally.replies,
        )

    def _failure(self, exc: anthropic.APIError) -> AgentError:
        if isinstance(exc, anthropic.APITimeoutError):
            return AgentError(
                f"the Anthropic API did not answer within {self.timeout_s:g}s ({self.max_retries} retries)"
            )
        if isinstance(exc, anthropic.APIConnectionError):
            return AgentError(
                f"could not reach the Anthropic API after {self.max_retries} retries: {exc.__cause__ or exc}"
            )
        if isinstance(exc, anthropic.AuthenticationError):
            return AgentError(
                f"the Anthropic API refused the key in {API_KEY_ENV} (401): {exc.api_message or exc.message}"
            )
        if isinstance(exc, anthropic.APIStatusError):
            detail = exc.api_message or exc.message
            if _is_retryable(exc.status_code):
                return AgentError(
                    f"the Anthropic API kept failing: HTTP {exc.status_code} after {self.max_retries} retries: {detail}"
                )
            return AgentError(f"the Anthropic API refused the request: HTTP {exc.status_code}: {detail}")
        return AgentError(f"the Anthropic API call failed: {exc}")


class _RetryNotices(anthropic.Middleware):
    """Says on screen why the worker waits: runs inside the SDK's retry loop, once per HTTP attempt.

    It only reports; the SDK decides and sleeps (honouring retry-after). The rule for "will be
    retried" mirrors the SDK's: 408, 409, 429, any 5xx, or a connection failure, while retries remain.
    """

    def __init__(self, *, max_retries: int, notify: Callable[[str], None]) -> None:
        self._max_retries = max_retries
        self._notify = notify

    def handle(
        self,
        request: anthropic.APIRequest,
        call_next: Callable[[anthropic.APIRequest], anthropic.APIResponse[Any]],
    ) -> anthropic.APIResponse[Any]:
        retry = request.retries_taken + 1
        will_retry = request.retries_taken < self._max_retries
        try:
            response = call_next(request)
        except anthropic.APIConnectionError as exc:
            if will_retry:
                self._notify(
                    f"could not reach the Anthropic API ({exc.message}); retry {retry} of {self._max_retries}"
                )
            raise
        should_retry = response.headers.get("x-should-retry")
        retryable = _is_retryable(response.status_code) if should_retry is None else should_retry == "true"
        if will_retry and retryable:
            wait = _server_wait_s(response.headers)
            when = f"in {wait:g}s" if wait is not None else "after a short backoff"
            self._notify(
                f"Anthropic API answered HTTP {response.status_code}; retry {retry} of {self._max_retries} {when}"
            )
        return response


def _server_wait_s(headers: Mapping[str, str]) -> float | None:
    """The wait the server asked for, read as the SDK reads it; None where the SDK backs off on its own."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            wait = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        return wait if wait > 0 else None
    return None


def _is_retryable(status: int) -> bool:
    return status in _RETRYABLE_STATUS or status >= 500


def _system_blocks(context: ProposalContext) -> list[dict[str, Any]]:
    text = f"{VARIANT_RULES}\n\n# Research brief for track {context.track_id}\n\n{context.brief.strip()}"
    return [{"type": "text", "text": text, "cache_control": _EPHEMERAL}]


def _opening_message(context: ProposalContext, *, refusal: str | None) -> dict[str, Any]:
    parent = (
        f"The parent train.py (variant {short_hash(context.parent_hash)}):\n\n"
        f"```python\n{context.parent_source}\n```\n\n{lineage_text(context.lineage_hypotheses)}"
    )
    request = (
        f"Propose one experiment on this parent. A direction for this attempt (seed {context.seed}): "
        f"{exploration_focus(context.seed)}. Take it if the log suggests it is worth trying; otherwise "
        f"choose your own. Answer by calling {SUBMIT_TOOL_NAME}."
    )
    if refusal is not None:
        request += f"\nAn earlier proposal from this parent was refused before training: {refusal}"
    return {
        "role": "user",
        "content": [
            # The parent (with its lineage) changes least often, then the log; the request varies
            # per attempt. Breakpoints after each stable block let later prompts reuse the longest
            # cached prefix that is still valid.
            {"type": "text", "text": parent, "cache_control": _EPHEMERAL},
            {"type": "text", "text": _findings(context), "cache_control": _EPHEMERAL},
            {"type": "text", "text": request},
        ],
    }


def _findings(context: ProposalContext) -> str:
    # The leaderboard moves only when the log gains a verified entry, so the two share a block.
    return f"{research_log_digest(context.research_log)}\n\n{leaderboard_text(context.leaderboard)}"


def _read_submission(message: Message, *, max_tokens: int) -> tuple[tuple[str, str] | None, str]:
    """(source, hypothesis) from the reply's submit_variant call, or None and what is wrong with it."""
    if message.stop_reason == "refusal":
        raise AgentError("the model declined to propose a variant (stop_reason: refusal)")
    if message.stop_reason == "max_tokens":
        return (
            None,
            f"your reply reached the {max_tokens}-token limit before it was complete; make a smaller change",
        )
    calls = [
        block
        for block in message.content
        if isinstance(block, ToolUseBlock) and block.name == SUBMIT_TOOL_NAME
    ]
    if not calls:
        return None, f"your reply did not call {SUBMIT_TOOL_NAME}"
    arguments = calls[0].input
    if not isinstance(arguments, dict):
        return None, f"{SUBMIT_TOOL_NAME} input must be an object with 'hypothesis' and 'source'"
    source = arguments.get("source")
    hypothesis = arguments.get("hypothesis")
    if not isinstance(source, str) or not source.strip():
        return None, f"{SUBMIT_TOOL_NAME} is missing 'source', the complete new train.py"
    if not isinstance(hypothesis, str) or not hypothesis.strip():
        return None, f"{SUBMIT_TOOL_NAME} is missing 'hypothesis', one line saying what changed and why"
    return (source, one_line(hypothesis, limit=HYPOTHESIS_MAX_CHARS)), ""


def _tool_feedback(tool_use_ids: list[str], text: str) -> dict[str, Any]:
    """The user turn that answers a reply: an error tool_result per tool call, or plain text if none."""
    if not tool_use_ids:
        return {"role": "user", "content": [{"type": "text", "text": text}]}
    results = [
        {"type": "tool_result", "tool_use_id": tool_id, "is_error": True, "content": text}
        for tool_id in tool_use_ids
    ]
    return {"role": "user", "content": results}


def _as_param(block: Any) -> dict[str, Any]:
    # Blocks go back exactly as received: thinking blocks, with their signatures, are only
    # accepted unchanged.
    param: dict[str, Any] = block.to_dict(mode="json")
    return param
