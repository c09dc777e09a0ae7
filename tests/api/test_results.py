"""Run reports: signatures, lease checks, idempotency, replays."""

from __future__ import annotations

from sqlalchemy import func, select

from coordinator.models import Run
from shared.signing import SigningKey
from tests.api.conftest import Coordinator, calibrate


def _runs(coordinator: Coordinator) -> int:
    with coordinator.session() as session:
        return int(session.scalar(select(func.count()).select_from(Run)) or 0)


def test_an_identical_resend_is_a_duplicate_and_counts_once(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    payload = alice.report(lease, val_bpb=1.0)
    first, second = alice.submit(payload), alice.submit(payload)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert second.json()["run_id"] == first.json()["run_id"]
    assert _runs(coordinator) == 1


def test_a_different_report_for_a_reported_lease_is_refused(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    alice.run(lease, 1.0)
    response = alice.submit(alice.report(lease, val_bpb=0.5))
    assert response.status_code == 409
    assert response.json()["code"] == "lease_already_reported"
    assert _runs(coordinator) == 1


def test_a_tampered_report_fails_its_signature(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    honest = alice.report(lease, val_bpb=1.3)
    signature = alice.key.sign(honest.model_dump(mode="json"))
    tampered = honest.model_copy(update={"metrics": honest.metrics.model_copy(update={"val_bpb": 0.3})})
    response = alice.submit(tampered, signature=signature)
    assert response.status_code == 403
    assert response.json()["code"] == "bad_signature"
    assert _runs(coordinator) == 0


def test_a_report_signed_by_another_key_is_refused(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    payload = alice.report(alice.lease(), val_bpb=1.0)
    response = alice.submit(payload, signature=SigningKey.generate().sign(payload.model_dump(mode="json")))
    assert response.json()["code"] == "bad_signature"


def test_a_run_replayed_onto_another_lease_is_refused(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    first, second = alice.lease(), alice.lease()
    payload = alice.report(first, val_bpb=1.0)
    assert alice.submit(payload).status_code == 200
    replay = alice.submit(payload, lease_id=second["id"])
    assert replay.status_code == 422
    assert replay.json()["code"] == "payload_mismatch"
    assert "lease_id" in replay.json()["detail"]["fields"]
    assert _runs(coordinator) == 1


def test_nobody_reports_for_another_workers_lease(coordinator: Coordinator, make_worker) -> None:
    alice, mallory = make_worker("a1", "alice"), make_worker("m1", "mallory")
    lease = alice.lease()
    forged = alice.report(lease, val_bpb=0.1).model_copy(update={"worker_id": mallory.worker_id})
    response = mallory.submit(forged, signature=mallory.key.sign(forged.model_dump(mode="json")))
    assert response.status_code == 403
    assert response.json()["code"] == "not_lease_owner"


def test_an_explore_report_must_carry_the_source_it_hashes(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0])
    lease = alice.lease()
    payload = alice.report(lease, val_bpb=0.9)
    lying = payload.model_copy(update={"variant_hash": "0" * 64})
    response = alice.submit(lying)
    assert response.status_code == 422
    assert response.json()["detail"]["fields"] == ["variant_hash (must be the sha256 of source)"]


def test_a_crashed_explore_run_is_kept_as_a_crashed_variant(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0])
    result = alice.run(alice.lease(), None, status="crashed")  # type: ignore[arg-type]
    assert result["variant_status"] == "crashed"
    entry = coordinator.client.get("/v1/tracks/test-track/log").json()["entries"][0]
    assert (entry["status"], entry["reason"]) == ("crashed", "train() raised RuntimeError: boom")


def test_oversized_bodies_are_refused_before_parsing(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    response = alice.coordinator.client.post(
        "/v1/leases", content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_oversized_bodies_of_undeclared_length_are_refused_with_413(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    chunks = iter([b"{"] + [b" " * 65536] * 32 + [b"}"])  # 2 MiB, sent chunked: no Content-Length
    response = alice.coordinator.client.post(
        "/v1/leases", content=chunks, headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_body_of_undeclared_length_under_the_limit_is_served(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    response = alice.coordinator.client.post(
        "/v1/leases", content=iter([b"{", b"}"]), headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 200


def test_a_wrong_method_is_405_with_its_allow_header(coordinator: Coordinator) -> None:
    response = coordinator.client.delete("/v1/leases")

    assert response.status_code == 405
    assert response.json()["code"] == "bad_request"
    assert "POST" in response.headers["Allow"]


def test_malformed_bodies_get_a_stable_code(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    response = alice.post(f"/v1/leases/{lease['id']}/result", {"payload": {"lease_id": 3}, "signature": "x"})
    assert response.status_code == 422
    assert response.json()["code"] == "bad_request"


def test_a_report_signed_before_the_protocol_grew_fields_still_verifies(
    coordinator: Coordinator, make_worker
) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    body = alice.report(lease, val_bpb=1.0).model_dump(mode="json")
    # What an older worker signed and sent: no layer, no code, no held-out figure.
    for key in ("layer", "code"):
        del body[key]
    del body["metrics"]["holdout_bpb"]
    response = alice.post(f"/v1/leases/{lease['id']}/result", {"payload": body, "signature": alice.key.sign(body)})
    assert response.status_code == 200, response.json()
    assert _runs(coordinator) == 1


def test_a_field_removed_from_a_signed_report_fails_its_signature(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    body = alice.report(lease, val_bpb=1.0).model_dump(mode="json")
    signature = alice.key.sign(body)
    del body["env"]  # signed as {"torch": "test"}; absent, it would read as {}
    response = alice.post(f"/v1/leases/{lease['id']}/result", {"payload": body, "signature": signature})
    assert response.json()["code"] == "bad_signature"
