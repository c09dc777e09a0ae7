"""Write limits: a client over them is told, with Retry-After, when it may write again."""

from __future__ import annotations

import pytest

from coordinator.kv import window_reset_s
from shared.signing import SigningKey
from tests.api.conftest import Coordinator
from tests.api.test_registration import _registration


def test_a_worker_over_its_write_limit_gets_429_with_the_seconds_until_its_window_ends(
    coordinator: Coordinator, make_worker
) -> None:
    worker = make_worker("w1", "alice")
    coordinator.client.app.state.arn.settings.writes_per_minute_per_worker = 2  # type: ignore[attr-defined]
    answers = [coordinator.client.post("/v1/leases", json={}, headers=worker.headers) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [200, 200]
    refused = answers[2]
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_registrations_from_one_address_over_its_limit_get_429_with_retry_after(coordinator: Coordinator) -> None:
    coordinator.client.app.state.arn.settings.writes_per_minute_per_ip = 1  # type: ignore[attr-defined]
    first = coordinator.client.post("/v1/workers", json=_registration(coordinator, SigningKey.generate()))
    second = coordinator.client.post("/v1/workers", json=_registration(coordinator, SigningKey.generate()))

    assert first.status_code == 201
    assert second.status_code == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(("now", "expected"), [(120.0, 60), (120.2, 60), (150.0, 30), (179.5, 1), (179.99, 1)])
def test_retry_after_counts_whole_seconds_to_the_end_of_the_window(now: float, expected: int) -> None:
    assert window_reset_s(60, now=now) == expected
