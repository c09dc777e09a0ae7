"""Compatibility: /v1/info names the oldest worker and the harness accepted, and lease requests
from a worker that names an older release in its User-Agent are refused with `worker_outdated`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from coordinator.config import Settings
from coordinator.models import Lease
from shared.track_spec import HARNESS_VERSION
from shared.versions import worker_user_agent, worker_version_of
from tests.api.conftest import Coordinator, Worker
from worker import __version__
from worker.client import CoordinatorClient


def lease_as(worker: Worker, user_agent: str) -> Any:
    return worker.coordinator.client.post(
        "/v1/leases", json={"track_id": worker.track_id}, headers={**worker.headers, "User-Agent": user_agent}
    )


def leases_taken(coordinator: Coordinator) -> int:
    with coordinator.session() as session:
        return int(session.scalar(select(func.count()).select_from(Lease)) or 0)


def test_info_names_the_oldest_worker_release_and_the_harness_it_accepts(coordinator: Coordinator) -> None:
    info = coordinator.client.get("/v1/info").json()

    assert (info["min_worker_version"], info["harness_version"]) == (__version__, HARNESS_VERSION)


def test_a_worker_older_than_the_minimum_is_refused_a_lease_and_takes_none(coordinator: Coordinator) -> None:
    coordinator.settings.min_worker_version = "0.10.0"
    alice = Worker(coordinator, "alice-box", "alice").register()

    response = lease_as(alice, "autoresearch-worker/0.9.3")

    assert response.status_code == 426
    assert response.json() == {
        "code": "worker_outdated",
        "message": "this coordinator needs worker 0.10.0 or newer, and this is worker 0.9.3:"
        " upgrade the worker and start it again",
        "detail": {"min_worker_version": "0.10.0", "worker_version": "0.9.3"},
    }
    assert leases_taken(coordinator) == 0


def test_a_worker_at_the_minimum_or_a_client_naming_no_release_gets_work(coordinator: Coordinator) -> None:
    coordinator.settings.min_worker_version = "0.10.0"
    alice = Worker(coordinator, "alice-box", "alice").register()

    assert lease_as(alice, "autoresearch-worker/0.10.0").json()["lease"] is not None
    assert lease_as(alice, "curl/8.5.0").status_code == 200


def test_an_outdated_workers_queued_result_is_still_taken(coordinator: Coordinator) -> None:
    alice = Worker(coordinator, "alice-box", "alice").register()
    lease = alice.lease()
    assert lease is not None
    coordinator.settings.min_worker_version = "99.0"

    body = alice.report(lease, val_bpb=1.0).model_dump(mode="json")
    response = coordinator.client.post(
        f"/v1/leases/{lease['id']}/result",
        json={"payload": body, "signature": alice.key.sign(body)},
        headers={**alice.headers, "User-Agent": "autoresearch-worker/0.1.0"},
    )

    assert response.status_code == 200, response.text


def test_the_worker_client_names_its_release_as_the_coordinator_reads_it() -> None:
    client = CoordinatorClient("http://coordinator.test")
    try:
        assert worker_version_of(client._http.headers["User-Agent"]) == __version__
        assert worker_user_agent(__version__) == client._http.headers["User-Agent"]
    finally:
        client.close()


def test_a_minimum_that_is_not_a_version_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="ARN_MIN_WORKER_VERSION: not a version: 'latest'"):
        Settings(_env_file=None, min_worker_version="latest")  # type: ignore[call-arg]
