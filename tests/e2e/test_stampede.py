"""A stampede: hundreds of workers ask at once, as they do when a coordinator comes back.

Every request is answered within the client's timeout, with work or with 503 and Retry-After,
never a stall or another 5xx, and the coordinator then serves as usual.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.protocol import HardwareInfo, RegistrationPayload
from shared.signing import SigningKey
from tests.e2e.network import Network
from tests.services import require_redis

pytestmark = pytest.mark.slow

WORKERS = 500
CLIENT_TIMEOUT_S = 30.0  # the worker client's default


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    network = Network(tmp_path)
    try:
        yield network
    finally:
        network.stop_all()


async def _register(client: httpx.AsyncClient, url: str, index: int) -> str:
    key = SigningKey.generate()
    payload = RegistrationPayload(
        public_key=key.public_key, name=f"w{index}", account=f"volunteer-{index % 50}",
        hardware=HardwareInfo(hardware_class="cpu"), issued_at=datetime.now(UTC),
    ).model_dump(mode="json")  # fmt: skip
    while True:
        response = await client.post(f"{url}/v1/workers", json={"payload": payload, "signature": key.sign(payload)})
        if response.status_code != 503:
            assert response.status_code == 201, response.text
            return str(response.json()["token"])
        await asyncio.sleep(float(response.headers["Retry-After"]))


async def _workers(url: str) -> list[str]:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
        tokens: list[str] = []
        for start in range(0, WORKERS, 50):
            batch = range(start, min(start + 50, WORKERS))
            tokens += await asyncio.gather(*(_register(client, url, i) for i in batch))
        return tokens


async def _stampede(url: str, tokens: list[str]) -> list[httpx.Response | BaseException]:
    limits = httpx.Limits(max_connections=len(tokens) + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        requests = (
            client.post(f"{url}/v1/leases", json={}, headers={"Authorization": f"Bearer {token}"}) for token in tokens
        )
        return await asyncio.gather(*requests, return_exceptions=True)


def test_hundreds_of_workers_asking_at_once_are_each_answered_and_then_served_as_usual(
    network: Network, database_url: str
) -> None:
    services = {"ARN_DATABASE_URL": database_url}
    if database_url.startswith("postgresql"):
        services["ARN_REDIS_URL"] = require_redis()  # production's shape: PostgreSQL and Redis
    network.start_coordinator(ARN_WRITES_PER_MINUTE_PER_IP="100000", ARN_NEW_ACCOUNTS_PER_HOUR_PER_IP="1000", **services)
    tokens = asyncio.run(_workers(network.url))

    answers = asyncio.run(_stampede(network.url, tokens))

    failures = [a for a in answers if isinstance(a, BaseException)]
    assert not failures, f"{len(failures)} requests failed, first: {failures[0]!r}"  # no timeout, no reset
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0, statuses
    for shed in (r for r in responses if r.status_code == 503):
        assert shed.json()["code"] == "unavailable"
        assert int(shed.headers["Retry-After"]) > 0
    # Afterwards it serves as usual: reads, and a lease for a worker that asks again.
    assert httpx.get(f"{network.url}/v1/info", timeout=5).status_code == 200
    again = httpx.post(
        f"{network.url}/v1/leases", json={}, headers={"Authorization": f"Bearer {tokens[-1]}"}, timeout=10
    )
    assert again.status_code == 200, again.text
