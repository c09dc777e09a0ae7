"""PostgreSQL connections severed under a live coordinator: 503 with Retry-After, then recovery.

A real `coordinator serve` reaches the real PostgreSQL through a TCP proxy that can cut every
connection, mid-transaction included, and refuse new ones for a while (a failover, a network
cut). The coordinator answers every request 200 or 503 `unavailable` with Retry-After, never a
500; once the database is back it serves again, and a result the outbox kept delivers, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from shared.protocol import (
    HardwareInfo,
    RegistrationPayload,
    ResultRequest,
    RunMetrics,
    RunPayload,
    signed_fields,
)
from shared.signing import SigningKey
from tests.e2e.network import Network, wait_for
from tests.services import fresh_postgres_schema
from tests.tcp_proxy import SeveringProxy
from worker.client import ONCE, CoordinatorClient
from worker.outbox import Outbox

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture
def proxy(database: str) -> Iterator[SeveringProxy]:
    url = sqlalchemy.make_url(database)
    proxy = SeveringProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def network(tmp_path: Path, database: str, proxy: SeveringProxy) -> Iterator[Network]:
    network = Network(tmp_path)
    through_proxy = sqlalchemy.make_url(database).set(host="127.0.0.1", port=proxy.port)
    try:
        network.start_coordinator(
            ARN_DATABASE_URL=through_proxy.render_as_string(hide_password=False), ARN_CPU_TINY_BUDGET_S="3"
        )
        yield network
    finally:
        network.stop_all()


def register(url: str) -> tuple[SigningKey, str, str]:
    key = SigningKey.generate()
    payload = RegistrationPayload(
        public_key=key.public_key, name="box", account="alice", hardware=HardwareInfo(hardware_class="cpu"),
        issued_at=datetime.now(UTC),
    ).model_dump(mode="json")  # fmt: skip
    body = httpx.post(f"{url}/v1/workers", json={"payload": payload, "signature": key.sign(payload)}).json()
    return key, body["worker_id"], body["token"]


def signed_result(key: SigningKey, worker_id: str, lease: dict) -> ResultRequest:
    payload = RunPayload(
        lease_id=lease["id"], worker_id=worker_id, track_id=lease["track_id"], kind=lease["kind"],
        variant_hash=lease["variant"]["hash"], seed=lease["seed"], status="ok",
        metrics=RunMetrics(val_bpb=2.4, holdout_bpb=2.5, steps=20), finished_at=datetime.now(UTC),
    )  # fmt: skip
    return ResultRequest(payload=payload, signature=key.sign(signed_fields(payload)))


def test_severed_connections_get_503_with_retry_after_and_the_outbox_delivers_once_after(
    network: Network, proxy: SeveringProxy, database: str, tmp_path: Path
) -> None:
    key, worker_id, token = register(network.url)
    auth = {"Authorization": f"Bearer {token}"}
    lease = httpx.post(f"{network.url}/v1/leases", json={}, headers=auth).json()["lease"]
    outbox = Outbox(tmp_path / "outbox")
    result = signed_result(key, worker_id, lease)
    outbox.put(lease["id"], result)

    def heartbeat() -> httpx.Response:  # a write: it always needs the database
        return httpx.post(f"{network.url}/v1/leases/{lease['id']}/heartbeat", json={}, headers=auth, timeout=30)

    # Cut the database while requests are in flight: each is answered 200 or 503, none 500.
    def ask(i: int) -> httpx.Response:
        if i % 2:
            return httpx.get(f"{network.url}/v1/tracks/cpu-tiny/leaderboard", timeout=30)
        return heartbeat()

    with ThreadPoolExecutor(16) as pool:
        answers = [pool.submit(ask, i) for i in range(160)]
        wait_for(lambda: sum(a.done() for a in answers) >= 16, timeout_s=30, what="requests under way", interval_s=0.01)
        proxy.sever()
        statuses = [a.result().status_code for a in answers]
    assert set(statuses) <= {200, 503}, statuses
    down = heartbeat()  # (a hot read may still be answered from the read cache)
    assert down.status_code == 503
    assert down.json()["code"] == "unavailable"
    assert int(down.headers["Retry-After"]) > 0

    with CoordinatorClient(network.url, token=token, retry_policy=ONCE) as client:
        kept = outbox.deliver_all(client)
        assert (len(kept.delivered), len(kept.failed)) == (0, 1)  # transient: kept for later

        proxy.restore()
        wait_for(
            lambda: heartbeat().status_code == 200,
            timeout_s=60, what="the coordinator to reach its database again",
        )  # fmt: skip
        delivered = outbox.deliver_all(client)
        assert len(delivered.delivered) == 1 and not outbox.pending()
        outbox.put(lease["id"], result)  # as after a crash before the ack: the same bytes, sent again
        assert outbox.deliver_all(client).delivered[0][1].duplicate is True

    engine = sqlalchemy.create_engine(database)
    try:
        with engine.connect() as connection:
            runs = connection.execute(sqlalchemy.text("select count(*) from runs where lease_id = :id"), {"id": lease["id"]})
            state = connection.execute(sqlalchemy.text("select state from leases where id = :id"), {"id": lease["id"]})
            assert (runs.scalar(), state.scalar()) == (1, "completed")
    finally:
        engine.dispose()
