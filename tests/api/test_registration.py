from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import select

from coordinator.models import Account
from coordinator.models import Worker as WorkerRow
from coordinator.services.workers import SEEN_RESOLUTION
from shared.protocol import HardwareInfo, RegistrationPayload
from shared.signing import SigningKey
from tests.api.conftest import Coordinator, Worker


def _registration(coordinator: Coordinator, key: SigningKey, *, skew_s: float = 0, account: str = "alice") -> dict:
    payload = RegistrationPayload(
        public_key=key.public_key, name="box", account=account, hardware=HardwareInfo(hardware_class="cpu"),
        issued_at=coordinator.clock() + timedelta(seconds=skew_s),
    ).model_dump(mode="json")
    return {"payload": payload, "signature": key.sign(payload)}


def test_info_publishes_the_coordinators_signing_key(coordinator: Coordinator) -> None:
    body = coordinator.client.get("/v1/info").json()
    assert body["protocol"] == "v1"
    assert body["public_key"] == coordinator.client.app.state.arn.signing_key.public_key  # type: ignore[attr-defined]


def test_registration_signed_by_another_key_is_refused(coordinator: Coordinator) -> None:
    body = _registration(coordinator, SigningKey.generate())
    body["signature"] = SigningKey.generate().sign(body["payload"])
    response = coordinator.client.post("/v1/workers", json=body)
    assert response.status_code == 403
    assert response.json()["code"] == "bad_signature"


def test_stale_registration_is_refused_with_a_clock_hint(coordinator: Coordinator) -> None:
    response = coordinator.client.post("/v1/workers", json=_registration(coordinator, SigningKey.generate(), skew_s=-3600))
    assert response.status_code == 422
    assert response.json()["code"] == "stale_registration"
    assert "clock" in response.json()["message"]


def test_reregistering_a_key_keeps_the_worker_and_revokes_the_old_token(coordinator: Coordinator) -> None:
    worker = Worker(coordinator, "box", "alice").register()
    old_token, worker_id = worker.token, worker.worker_id
    worker.register()
    assert worker.worker_id == worker_id
    assert worker.token != old_token
    response = coordinator.client.post("/v1/leases", json={}, headers={"Authorization": f"Bearer {old_token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_a_key_cannot_move_to_another_account(coordinator: Coordinator) -> None:
    key = SigningKey.generate()
    assert coordinator.client.post("/v1/workers", json=_registration(coordinator, key)).status_code == 201
    response = coordinator.client.post("/v1/workers", json=_registration(coordinator, key, account="mallory"))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_requests_without_a_token_are_unauthorized(coordinator: Coordinator) -> None:
    response = coordinator.client.post("/v1/leases", json={})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_a_registration_time_without_a_time_zone_is_a_clear_422(coordinator: Coordinator) -> None:
    key = SigningKey.generate()
    body = _registration(coordinator, key)
    body["payload"]["issued_at"] = coordinator.clock().replace(tzinfo=None).isoformat()
    body["signature"] = key.sign(body["payload"])

    response = coordinator.client.post("/v1/workers", json=body)

    assert response.status_code == 422
    assert response.json()["code"] == "bad_request"
    assert "issued_at" in response.json()["message"]


def test_machines_registering_into_a_new_account_at_once_all_join_it(coordinator: Coordinator) -> None:
    bodies = [_registration(coordinator, SigningKey.generate(), account="fleet") for _ in range(8)]
    start = threading.Barrier(len(bodies))

    def register(body: dict) -> tuple[int, str]:
        start.wait()
        response = coordinator.client.post("/v1/workers", json=body)
        return response.status_code, response.json().get("account", response.text)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(register, bodies))

    assert answers == [(201, "fleet")] * len(bodies)
    with coordinator.session() as session:
        assert session.scalars(select(Account).where(Account.name == "fleet")).one() is not None


def test_a_workers_requests_move_its_last_seen_time_at_most_once_per_resolution(
    coordinator: Coordinator, make_worker
) -> None:
    alice = make_worker("a1", "alice")

    def last_seen() -> datetime | None:
        with coordinator.session() as session:
            return session.scalars(select(WorkerRow.last_seen_at).where(WorkerRow.id == alice.worker_id)).one()

    started = coordinator.clock()
    alice.lease()
    assert last_seen() == started
    coordinator.clock.advance(SEEN_RESOLUTION.total_seconds() - 1)  # type: ignore[attr-defined]
    alice.lease()
    assert last_seen() == started  # not written again so soon
    coordinator.clock.advance(2)  # type: ignore[attr-defined]
    alice.lease()
    assert last_seen() == started + SEEN_RESOLUTION + timedelta(seconds=1)
