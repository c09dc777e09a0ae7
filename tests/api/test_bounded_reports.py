"""Bounded reports and database failures: nonsense is a 4xx ErrorBody, a lost database a 503, never a bare 500."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from coordinator.api import leases as leases_api
from coordinator.api import tracks as tracks_api
from coordinator.models import Run
from shared.protocol import MAX_COUNT
from shared.run_codes import Layer
from tests.api.conftest import TRACK, Coordinator, Worker


def signed_body(worker: Worker, lease: dict[str, Any], **metrics: Any) -> dict[str, Any]:
    """A report as raw JSON, so it can hold what the shared models would refuse to build."""
    payload = worker.report(lease, val_bpb=1.0).model_dump(mode="json")
    payload["metrics"].update(metrics)
    return {"payload": payload, "signature": worker.key.sign(payload)}


def test_a_signed_report_with_a_count_beyond_2_53_is_refused_by_the_protocol_and_serving_goes_on(
    coordinator: Coordinator, make_worker
) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    response = alice.post(f"/v1/leases/{lease['id']}/result", signed_body(alice, lease, steps=2**64))
    assert (response.status_code, response.json()["code"]) == (422, "bad_request")
    assert response.json()["message"] == (
        "the request body or parameters are invalid:"
        " payload.metrics.steps: Input should be less than or equal to 9007199254740991"
    )
    assert response.json()["detail"] == [
        {"loc": ["body", "payload", "metrics", "steps"], "msg": "Input should be less than or equal to 9007199254740991"}
    ]
    with coordinator.session() as session:
        assert session.scalars(select(Run)).all() == []
    assert coordinator.client.get("/v1/tracks").status_code == 200
    assert alice.run(lease, 1.0)["variant_status"] == "verified"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("val_bpb", -0.5, "Input should be greater than or equal to 0"),
        ("val_bpb", 1e308, "Input should be less than or equal to 1000"),
        ("train_seconds", 1e8, "Input should be less than or equal to 10000000"),
        ("tokens", -1, "Input should be greater than or equal to 0"),
    ],
)
def test_a_metric_out_of_its_bounds_is_a_422(
    coordinator: Coordinator, make_worker, field: str, value: float, message: str
) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    response = alice.post(f"/v1/leases/{lease['id']}/result", signed_body(alice, lease, **{field: value}))
    assert (response.status_code, response.json()["code"]) == (422, "bad_request")
    assert response.json()["message"] == f"the request body or parameters are invalid: payload.metrics.{field}: {message}"


def test_a_non_finite_number_in_a_report_is_a_422(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    body = alice.report(lease, val_bpb=1.0).model_dump_json().replace('"val_bpb":1.0', '"val_bpb":NaN')
    response = coordinator.client.post(
        f"/v1/leases/{lease['id']}/result",
        content=f'{{"payload": {body}, "signature": "x"}}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (422, "bad_request")
    assert response.json()["message"].endswith("payload.metrics.val_bpb: Input should be a finite number")


def test_a_heartbeat_out_of_bounds_is_a_422(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    response = alice.post(f"/v1/leases/{lease['id']}/heartbeat", {"phase": "training", "step": 2**60})
    assert (response.status_code, response.json()["code"]) == (422, "bad_request")
    assert response.json()["message"] == (
        "the request body or parameters are invalid: step: Input should be less than or equal to 9007199254740991"
    )


def test_the_largest_count_the_protocol_allows_fits_the_database(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    response = alice.post(f"/v1/leases/{lease['id']}/result", signed_body(alice, lease, steps=MAX_COUNT))
    assert response.status_code == 200, response.text
    with coordinator.session() as session:
        assert session.scalars(select(Run.steps)).one() == MAX_COUNT


def test_layer_and_code_are_stored_and_shown_with_the_run(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    payload = alice.report(lease, val_bpb=None, status="crashed").model_copy(
        update={"layer": Layer.sandbox, "code": "out_of_memory"}
    )
    assert alice.submit(payload).status_code == 200
    runs = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["runs"]
    assert [(run["status"], run["layer"], run["code"]) for run in runs] == [("crashed", "sandbox", "out_of_memory")]


def test_an_unknown_layer_is_a_422(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    payload = alice.report(lease, val_bpb=1.0).model_dump(mode="json")
    payload["layer"] = "kernel"
    response = alice.post(f"/v1/leases/{lease['id']}/result", {"payload": payload, "signature": alice.key.sign(payload)})
    assert (response.status_code, response.json()["code"]) == (422, "bad_request")
    assert response.json()["message"] == (
        "the request body or parameters are invalid: payload.layer: Input should be 'policy', 'guard',"
        " 'sandbox', 'budget', 'probe', 'report' or 'harness'"
    )


# --- database errors that escape a route ------------------------------------------------------


def raising(error: Exception):  # type: ignore[no-untyped-def]
    def fail(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise error

    return fail


def test_a_data_error_inside_a_route_is_a_422_bad_request(
    coordinator: Coordinator, make_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    error = sa_exc.DataError("INSERT INTO runs ...", {"steps": 1}, Exception("integer out of range\nDETAIL: x"))
    monkeypatch.setattr(leases_api, "submit_result", raising(error))
    response = alice.submit(alice.report(lease, val_bpb=1.0))
    assert (response.status_code, response.json()) == (
        422, {"code": "bad_request", "message": "a value does not fit the database: integer out of range", "detail": None}
    )


def test_an_integrity_error_inside_a_route_is_a_409_conflict(
    coordinator: Coordinator, make_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    error = sa_exc.IntegrityError("INSERT INTO runs ...", {}, Exception("UNIQUE constraint failed: runs.lease_id"))
    monkeypatch.setattr(leases_api, "submit_result", raising(error))
    response = alice.submit(alice.report(lease, val_bpb=1.0))
    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert response.json()["message"] == "the request conflicts with stored data: UNIQUE constraint failed: runs.lease_id"


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached, connection timed out"),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("terminating connection"), connection_invalidated=True),
    ],
    ids=["operational", "interface", "pool-timeout", "connection-invalidated"],
)
def test_a_lost_database_inside_a_route_is_a_503_with_retry_after(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    monkeypatch.setattr(tracks_api, "list_tracks", raising(error))
    response = coordinator.client.get("/v1/tracks")
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json() == {
        "code": "unavailable",
        "message": "the coordinator cannot reach its database right now; retry shortly",
        "detail": None,
    }
    monkeypatch.undo()
    assert coordinator.client.get("/v1/tracks").status_code == 200


def test_any_other_unexpected_error_is_a_logged_500_internal(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tracks_api, "list_tracks", raising(RuntimeError("a bug")))
    client = TestClient(coordinator.client.app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="coordinator.main"):
        response = client.get("/v1/tracks")
    assert response.status_code == 500
    assert response.json() == {
        "code": "internal",
        "message": "the coordinator hit an unexpected error; it has been logged",
        "detail": None,
    }
    [record] = [r for r in caplog.records if r.name == "coordinator.main"]
    assert record.getMessage() == "GET /v1/tracks failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "a bug"
