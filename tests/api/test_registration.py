from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from coordinator.cli import app as coordinator_cli
from coordinator.models import Account
from coordinator.models import Worker as WorkerRow
from coordinator.services.workers import SEEN_RESOLUTION, account_secret
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


def test_a_machine_joins_an_account_from_its_address_or_with_its_secret_and_nobody_elses(
    coordinator: Coordinator, monkeypatch
) -> None:
    """Any key naming an account would otherwise cast that volunteer's vote and act under every name it knows."""
    first = coordinator.client.post("/v1/workers", json=_registration(coordinator, SigningKey.generate()))
    assert first.status_code == 201
    secret = first.json()["account_secret"]
    assert secret and secret == account_secret(coordinator.client.app.state.arn.signing_key, "alice")  # type: ignore[attr-defined]
    # Another machine at the same address (a volunteer's second box, a GPU of the same one) joins.
    assert coordinator.client.post("/v1/workers", json=_registration(coordinator, SigningKey.generate())).status_code == 201
    elsewhere = TestClient(coordinator.client.app, client=("203.0.113.7", 40000))
    refused = elsewhere.post("/v1/workers", json=_registration(coordinator, SigningKey.generate()))
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert "--account-secret" in refused.json()["message"]
    for guess in ("x" * 24, "é" * 24, "\x00", "\ud800"):  # a wrong secret, whatever its characters, is refused, never a 500
        body = json.dumps({**_registration(coordinator, SigningKey.generate()), "account_secret": guess})  # \u escapes
        wrong = elsewhere.post("/v1/workers", content=body, headers={"Content-Type": "application/json"})
        assert (wrong.status_code, wrong.json()["code"]) in ((403, "forbidden"), (422, "bad_request")), guess
    joined = elsewhere.post("/v1/workers", json={**_registration(coordinator, SigningKey.generate()), "account_secret": secret})
    assert (joined.status_code, joined.json()["account"]) == (201, "alice")
    # A new account from anywhere needs nothing, and has a secret of its own.
    own = elsewhere.post("/v1/workers", json=_registration(coordinator, SigningKey.generate(), account="mallory"))
    assert own.status_code == 201 and own.json()["account_secret"] not in (None, secret)
    with coordinator.session() as session:
        places = session.scalars(select(WorkerRow.registered_from).order_by(WorkerRow.created_at, WorkerRow.id)).all()
        assert sorted(places) == ["203.0.113.7", "203.0.113.7", "testclient", "testclient"]
    # A maintainer prints the same secret, for a volunteer whose machines were set up before it was shown.
    monkeypatch.setenv("ARN_DATABASE_URL", coordinator.settings.resolved_database_url)
    monkeypatch.setenv("ARN_DATA_DIR", str(coordinator.settings.data_dir))
    printed = CliRunner().invoke(coordinator_cli, ["worker", "secret", "alice"])
    assert (printed.exit_code, printed.output.strip()) == (0, secret), printed.output


def test_an_address_known_only_from_quarantined_machines_lets_no_one_join(coordinator: Coordinator) -> None:
    elsewhere = TestClient(coordinator.client.app, client=("203.0.113.7", 40000))
    assert coordinator.client.post("/v1/workers", json=_registration(coordinator, SigningKey.generate())).status_code == 201
    key = SigningKey.generate()
    assert elsewhere.post("/v1/workers", json={**_registration(coordinator, key), "account_secret": account_secret(
        coordinator.client.app.state.arn.signing_key, "alice")}).status_code == 201  # type: ignore[attr-defined]  # fmt: skip
    with coordinator.session() as session:
        row = session.scalars(select(WorkerRow).where(WorkerRow.public_key == key.public_key)).one()
        row.quarantined, row.quarantine_reason = True, "3 invalid results"
        session.commit()
    # Its quarantine is its own; its address does not vouch for a fresh key in its account.
    assert elsewhere.post("/v1/workers", json=_registration(coordinator, SigningKey.generate())).status_code == 403
