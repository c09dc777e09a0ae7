"""Fixtures for the agent tests: a fake Anthropic Messages API on a real local HTTP server.

The real `anthropic` SDK is pointed at it with base_url. The server answers from a queue of
scripted replies (status, JSON body, headers) and records every request it receives (path,
headers, JSON body), so a test asserts both what the SDK sent and what the agent made of the reply.
A successful reply to a streaming request is sent as the API's server-sent events.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.hashing import variant_hash
from worker.agents.base import ProposalContext

PARENT_SOURCE = '''\
"""A tiny causal language model: one embedding and a head."""

import torch

LEARNING_RATE = 0.01  # AdamW step size
BATCH_SIZE = 8


class TinyModel(torch.nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 32)
        self.head = torch.nn.Linear(32, vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(idx))  # (B, T, vocab)


def train(ctx):
    model = TinyModel(ctx.vocab_size).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    for step, (x, y) in enumerate(ctx.batches(BATCH_SIZE, ctx.seq_len)):
        if ctx.time_left() <= 0:
            break
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.report(step=step, loss=loss.item())
    return model
'''

CHILD_SOURCE = PARENT_SOURCE.replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.02")

RESEARCH_LOG: list[dict[str, Any]] = [
    {
        "hash": "c" * 64,
        "parent_hash": "b" * 64,
        "hypothesis": "Use a cosine learning-rate decay to zero",
        "status": "rejected",
        "val_bpb": 1.31,
        "parent_val_bpb": 1.30,
        "delta": 0.01,
        "author": "gpu-7 (ada)",
        "reason": "not reproduced: verifiers measured +0.0100",
        "created_at": "2026-11-20T10:00:00Z",
    },
    {
        "hash": "b" * 64,
        "parent_hash": "a" * 64,
        "hypothesis": "Double the batch size to 16",
        "status": "verified",
        "val_bpb": 1.30,
        "parent_val_bpb": 1.32,
        "delta": -0.02,
        "author": "gpu-3 (bo)",
        "reason": None,
        "created_at": "2026-11-19T10:00:00Z",
    },
]
LINEAGE = ["Double the batch size to 16", "Add an output head bias"]
LEADERBOARD: list[dict[str, Any]] = [
    {
        "rank": 1,
        "hash": "b" * 64,
        "short_hash": "b" * 10,
        "val_bpb": 1.30,
        "delta_vs_baseline": -0.05,
        "author": "gpu-3 (bo)",
        "hypothesis": "Double the batch size to 16",
        "verified_at": "2026-11-19T11:00:00Z",
        "runs": 3,
    },
    {
        "rank": 2,
        "hash": "a" * 64,
        "short_hash": "a" * 10,
        "val_bpb": 1.35,
        "delta_vs_baseline": 0.0,
        "author": None,
        "hypothesis": None,
        "verified_at": None,
        "runs": 2,
    },
]
AUTHORS = ("gpu-3 (bo)", "gpu-7 (ada)")  # in the log and leaderboard; never sent to a model


def make_context(**overrides: Any) -> ProposalContext:
    values: dict[str, Any] = {
        "track_id": "cpu-tiny",
        "brief": "Lower val_bpb on the cpu-tiny track within 60 seconds of CPU time.",
        "parent_hash": variant_hash(PARENT_SOURCE),
        "parent_source": PARENT_SOURCE,
        "lineage_hypotheses": list(LINEAGE),
        "research_log": [dict(entry) for entry in RESEARCH_LOG],
        "leaderboard": [dict(entry) for entry in LEADERBOARD],
        "seed": 7,
    }
    values.update(overrides)
    return ProposalContext(**values)


@pytest.fixture
def context() -> ProposalContext:
    return make_context()


# --- the fake Messages API -------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]


_message_ids = itertools.count(1)


def usage(
    *, input_tokens: int = 1200, output_tokens: int = 800, cache_write: int = 3000, cache_read: int = 0
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


def message(content: list[dict[str, Any]], *, stop_reason: str = "tool_use", **usage_fields: Any) -> Reply:
    number = next(_message_ids)
    return Reply(
        status=200,
        body={
            "id": f"msg_{number:04d}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage(**usage_fields),
        },
    )


def tool_call(tool_input: Any, *, tool_id: str = "toolu_01", name: str = "submit_variant") -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def submission(source: str, hypothesis: str, *, tool_id: str = "toolu_01", **usage_fields: Any) -> Reply:
    return message([tool_call({"hypothesis": hypothesis, "source": source}, tool_id=tool_id)], **usage_fields)


def api_error(status: int, error_type: str, text: str, *, headers: dict[str, str] | None = None) -> Reply:
    body = {"type": "error", "error": {"type": error_type, "message": text}}
    return Reply(status=status, body=body, headers=dict(headers or {}))


def server_sent_events(message: dict[str, Any]) -> str:
    """A scripted Message as the event stream the API sends for it when asked with stream=true."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                **message,
                "content": [],
                "stop_reason": None,
                "usage": {**message["usage"], "output_tokens": 1},
            },
        }
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        elif block["type"] == "thinking":
            start = {**block, "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        else:
            start = {**block, "text": ""}
            deltas = [{"type": "text_delta", "text": block["text"]}]
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events.extend({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas)
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": message["usage"],
        }
    )
    events.append({"type": "message_stop"})
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)


class FakeMessagesAPI:
    """A local HTTP server that plays back scripted replies and records each request."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-messages-api",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.replies:
                return self.replies.popleft()
        return api_error(418, "test_error", "the test scripted no reply for this request")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                recorded = RecordedRequest(
                    method="POST",
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=json.loads(raw) if raw else {},
                )
                reply = api._answer(recorded)
                streamed = recorded.body.get("stream") is True and reply.status == 200
                if streamed:
                    payload = server_sent_events(reply.body).encode("utf-8")
                else:
                    payload = json.dumps(reply.body).encode("utf-8")
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream" if streamed else "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output to what the tests print

        return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    api = FakeMessagesAPI()
    api.start()
    try:
        yield api
    finally:
        api.stop()
