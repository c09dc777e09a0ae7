"""The coordinator client: typed answers, and failures classified before anything is retried."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from shared.protocol import InfoResponse
from worker.client import (
    FOREVER,
    CoordinatorClient,
    CoordinatorError,
    ProtocolError,
    RetryPolicy,
    TransientError,
    backoff_delay,
    parse_retry_after,
    retrying,
)

INFO = InfoResponse(name="test", version="1", public_key="a" * 44).model_dump(mode="json")


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message}, headers=headers)


class Script:
    """A MockTransport handler that answers from a list, in order, and records each request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Waits:
    """Stands in for the client's interruptible sleep: records each wait, never sleeps."""

    def __init__(self, *, interrupt_after: int | None = None) -> None:
        self.seconds: list[float] = []
        self.interrupt_after = interrupt_after

    def __call__(self, seconds: float) -> bool:
        self.seconds.append(seconds)
        return self.interrupt_after is not None and len(self.seconds) >= self.interrupt_after


def make_client(script: Script, waits: Waits | None = None, **kwargs: Any) -> CoordinatorClient:
    return CoordinatorClient(
        "http://coordinator.test", transport=httpx.MockTransport(script), wait=waits or Waits(), **kwargs
    )


def test_a_500_is_retried_and_the_second_answer_is_returned() -> None:
    script = Script(error(500, "internal", "database hiccup"), httpx.Response(200, json=INFO))
    waits = Waits()
    client = make_client(script, waits)

    info = client.call(client.info)

    assert info == InfoResponse.model_validate(INFO)
    assert len(script.requests) == 2
    assert len(waits.seconds) == 1
    assert 0.0 <= waits.seconds[0] <= RetryPolicy().base_delay_s


def test_a_429_waits_exactly_the_retry_after_the_server_asked_for() -> None:
    script = Script(
        error(429, "rate_limited", "slow down", **{"Retry-After": "7"}), httpx.Response(200, json=INFO)
    )
    waits = Waits()
    client = make_client(script, waits)

    client.call(client.info)

    assert waits.seconds == [7.0]


def test_a_404_raises_at_once_with_the_stable_code_and_message() -> None:
    script = Script(error(404, "unknown_variant", "no variant abc"))
    waits = Waits()
    client = make_client(script, waits)

    with pytest.raises(CoordinatorError) as caught:
        client.call(lambda: client.variant("abc", track_id="t"))

    assert (caught.value.code, caught.value.message, caught.value.status) == (
        "unknown_variant",
        "no variant abc",
        404,
    )
    assert len(script.requests) == 1
    assert waits.seconds == []


def test_a_410_lease_expired_is_definitive_but_a_408_is_retried() -> None:
    expired = make_client(Script(error(410, "lease_expired", "too late")))
    with pytest.raises(CoordinatorError) as caught:
        expired.call(lambda: expired.release("lease-1", "bye"))
    assert caught.value.code == "lease_expired"

    script = Script(httpx.Response(408, text="request timeout"), httpx.Response(204))
    timeout_then_ok = make_client(script)
    timeout_then_ok.call(lambda: timeout_then_ok.release("lease-1", "bye"))
    assert len(script.requests) == 2


def test_a_connection_error_is_transient_and_retried() -> None:
    script = Script(httpx.ConnectError("connection refused"), httpx.Response(200, json=INFO))
    client = make_client(script)

    assert client.call(client.info).name == "test"
    assert len(script.requests) == 2


def test_retries_stop_after_max_attempts_with_the_last_error() -> None:
    script = Script(*[error(503, "internal", f"down {i}") for i in range(3)])
    waits = Waits()
    client = make_client(script, waits, retry_policy=RetryPolicy(max_attempts=3))

    with pytest.raises(TransientError) as caught:
        client.call(client.info)

    assert caught.value.status == 503
    assert "down 2" in str(caught.value)
    assert len(script.requests) == 3
    assert len(waits.seconds) == 2


def test_retries_stop_when_the_next_wait_would_pass_max_elapsed() -> None:
    script = Script(error(503, "internal", "down", **{"Retry-After": "50"}))
    client = make_client(script, retry_policy=RetryPolicy(max_attempts=None, max_elapsed_s=10.0))

    with pytest.raises(TransientError):
        client.call(client.info)
    assert len(script.requests) == 1


def test_call_forever_keeps_retrying_until_its_wait_is_interrupted() -> None:
    script = Script(*[httpx.ConnectError("refused") for _ in range(5)])
    waits = Waits(interrupt_after=5)
    client = make_client(script, waits)

    with pytest.raises(TransientError):
        client.call_forever(client.info)

    assert len(script.requests) == 5
    assert len(waits.seconds) == 5


def test_the_bearer_token_and_json_body_are_sent() -> None:
    lease_none = {"lease": None, "retry_after_s": 5.0}
    script = Script(httpx.Response(200, json=lease_none))
    client = make_client(script, token="secret-token")

    response = client.request_lease("cpu-tiny")

    assert response.lease is None and response.retry_after_s == 5.0
    request = script.requests[0]
    assert request.headers["Authorization"] == "Bearer secret-token"
    assert (request.method, request.url.path) == ("POST", "/v1/leases")
    assert request.content == b'{"track_id":"cpu-tiny"}'


def test_an_answer_that_is_not_the_protocol_raises_protocol_error() -> None:
    client = make_client(Script(httpx.Response(200, text="<html>a login page</html>")))

    with pytest.raises(ProtocolError, match="not a InfoResponse"):
        client.info()


def test_an_error_without_an_error_body_keeps_the_status_as_its_code() -> None:
    client = make_client(Script(httpx.Response(403, text="Forbidden by proxy")))

    with pytest.raises(CoordinatorError) as caught:
        client.info()
    assert (caught.value.code, caught.value.message) == ("http_403", "Forbidden by proxy")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_under_an_exponential_ceiling_and_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=30.0)
    rng = random.Random(0)
    for attempt in range(12):
        ceiling = min(30.0, 2.0**attempt)
        delays = [backoff_delay(attempt, policy=policy, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not pinned near zero


def test_retrying_lets_other_exceptions_through_untouched() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retrying(broken, policy=FOREVER, wait=Waits())
    assert calls == [1]


def test_on_retry_hears_each_transient_error_and_its_delay() -> None:
    heard: list[tuple[str, float]] = []
    script = Script(
        error(502, "internal", "bad gateway", **{"Retry-After": "2"}), httpx.Response(200, json=INFO)
    )

    def on_retry(exc: TransientError, delay: float) -> None:
        heard.append((str(exc), delay))

    client = make_client(script, on_retry=on_retry)

    client.call(client.info)

    assert heard == [("GET /v1/info: HTTP 502 internal: bad gateway", 2.0)]


def test_a_503_unavailable_is_retried_after_the_servers_retry_after() -> None:
    script = Script(
        error(503, "unavailable", "the coordinator cannot reach its database right now; retry shortly",
              **{"Retry-After": "5"}),
        httpx.Response(200, json=INFO),
    )
    waits = Waits()
    client = make_client(script, waits)

    client.call(client.info)

    assert waits.seconds == [5.0]


def test_a_422_carries_the_fields_that_failed_validation() -> None:
    detail = [{"loc": ["body", "payload", "metrics", "steps"], "msg": "Input should be less than or equal to 9"}]
    script = Script(httpx.Response(422, json={"code": "bad_request", "message": "invalid", "detail": detail}))
    client = make_client(script)

    with pytest.raises(CoordinatorError) as caught:
        client.call(client.info)

    assert (caught.value.code, caught.value.status, caught.value.detail) == ("bad_request", 422, detail)
    assert len(script.requests) == 1


def test_holdout_windows_returns_the_npy_bytes_of_the_lease() -> None:
    npy = b"\x93NUMPY fake"
    script = Script(httpx.Response(200, content=npy, headers={"Content-Type": "application/octet-stream"}))
    client = make_client(script, token="t0ken")

    assert client.holdout_windows("lease-1") == npy
    [request] = script.requests
    assert (request.method, request.url.path) == ("GET", "/v1/leases/lease-1/holdout")
    assert request.headers["Authorization"] == "Bearer t0ken"


def test_holdout_windows_classifies_failures_like_every_call() -> None:
    refused = make_client(Script(error(409, "no_holdout", "lease lease-1 is an explore lease")))
    with pytest.raises(CoordinatorError) as caught:
        refused.call(lambda: refused.holdout_windows("lease-1"))
    assert (caught.value.code, caught.value.status) == ("no_holdout", 409)

    script = Script(error(503, "unavailable", "later", **{"Retry-After": "5"}),
                    httpx.Response(200, content=b"npy", headers={"Content-Type": "application/octet-stream"}))
    retried = make_client(script)
    assert retried.call(lambda: retried.holdout_windows("lease-1")) == b"npy"
    assert len(script.requests) == 2

    not_npy = make_client(Script(httpx.Response(200, json={"windows": []})))
    with pytest.raises(ProtocolError, match="expected application/octet-stream, got application/json"):
        not_npy.holdout_windows("lease-1")
