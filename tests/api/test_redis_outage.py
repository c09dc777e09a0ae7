"""With Redis down, the coordinator keeps leasing and accepting results; its roles resume after."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from coordinator.kv import KeyValue, RedisKV
from tests.api.conftest import Coordinator, calibrate
from tests.services import RedisProcess


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kv(redis_server: RedisProcess) -> KeyValue:
    return RedisKV(redis_server.url, retry_s=0.2)


def test_leasing_and_results_go_on_while_redis_is_down_and_limits_resume_after(
    coordinator: Coordinator, make_worker, redis_server: RedisProcess
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    redis_server.stop()

    calibrate(coordinator, [1.00, 1.00])  # leases and results, with every Redis call failing
    claim = alice.run(alice.lease(), 0.90)
    assert bob.run(bob.lease(), 0.92)["variant_status"] == "verified"
    assert coordinator.client.get("/v1/info").status_code == 200

    redis_server.start()
    time.sleep(0.3)  # the outage's retry interval
    coordinator.client.app.state.arn.settings.writes_per_minute_per_worker = 1  # type: ignore[attr-defined]
    answers = [alice.post("/v1/leases", {}).status_code for _ in range(2)]
    assert answers == [200, 429]  # rate limits count again
    assert claim["variant_status"] == "candidate"
