"""A researcher's own variant through the API: the policy at the door, verification by other
accounts under the candidates' rule, retries, conflicts, and the pending limit."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from coordinator.models import Track
from coordinator.services.tracks import TrackParams
from shared.hashing import variant_hash
from shared.protocol import SubmissionPayload
from tests.api.conftest import BASELINE, TRACK, Coordinator, Worker, calibrate

TWEAK = BASELINE + "# a researcher's idea\n"


@pytest.fixture
def track_params(track_params: TrackParams) -> TrackParams:
    return dataclasses.replace(track_params, quorum=2)


def submit(researcher: Worker, source: str, *, hypothesis: str = "warmup 10% -> 5%", parent: str | None = None,
           track_id: str = TRACK, signature: str | None = None) -> Any:
    payload = SubmissionPayload(track_id=track_id, source=source, hypothesis=hypothesis, parent_hash=parent)
    body = payload.model_dump(mode="json", exclude_unset=True)
    return researcher.post(
        f"/v1/tracks/{TRACK}/submissions", {"payload": body, "signature": signature or researcher.key.sign(body)}
    )


def detail(coordinator: Coordinator, digest: str) -> dict[str, Any]:
    response = coordinator.client.get(f"/v1/variants/{digest}?track_id={TRACK}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_submission_is_verified_by_other_accounts_and_promoted(coordinator: Coordinator, make_worker) -> None:
    researcher = make_worker("laptop", "rita")
    rita_gpu, bob, carol = make_worker("r-gpu", "rita"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    response = submit(researcher, TWEAK)
    assert response.status_code == 201, response.text
    queued = response.json()
    assert queued["status"] == "candidate" and not queued["duplicate"]
    assert queued["variant_hash"] == variant_hash(TWEAK)
    with coordinator.session() as session:
        head = session.get(Track, TRACK).head.hash
    assert queued["parent_hash"] == head

    # The submitter's own account never verifies it: its other machine gets an explore.
    assert rita_gpu.lease()["kind"] == "explore"
    for verifier in (bob, carol):
        lease = verifier.lease()
        assert (lease["kind"], lease["variant"]["hash"]) == ("verify", queued["variant_hash"])
        assert lease["control"]["hash"] == head  # paired with the head, like any candidate
        outcome = verifier.run(lease, 0.90)
    assert outcome["variant_status"] == "verified"

    shown = detail(coordinator, queued["variant_hash"])
    assert shown["origin"] == "person" and shown["claimed_val_bpb"] is None
    assert sorted(r["account"] for r in shown["runs"] if r["kind"] == "verify") == ["bob", "carol"]
    board = coordinator.client.get(f"/v1/tracks/{TRACK}/leaderboard").json()["entries"]
    assert board[0]["hash"] == queued["variant_hash"] and board[0]["origin"] == "person"
    log = coordinator.client.get(f"/v1/tracks/{TRACK}/log").json()["entries"]
    assert {e["hash"]: e["origin"] for e in log}[queued["variant_hash"]] == "person"


def test_a_submission_that_breaks_the_policy_is_refused_with_its_code_and_line(
    coordinator: Coordinator, make_worker
) -> None:
    researcher = make_worker("laptop", "rita")
    hostile = BASELINE + "import socket\n"
    response = submit(researcher, hostile)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "policy_violation"
    line = hostile.count("\n")
    assert f"line {line}:" in error["message"]
    assert any(v["line"] == line and v["code"] for v in error["detail"])
    unknown = coordinator.client.get(f"/v1/variants/{variant_hash(hostile)}?track_id={TRACK}")
    assert unknown.status_code == 404  # nothing stored


def test_a_resend_is_answered_once_and_another_accounts_copy_is_a_conflict(
    coordinator: Coordinator, make_worker
) -> None:
    rita, sam = make_worker("laptop", "rita"), make_worker("desk", "sam")
    first = submit(rita, TWEAK)
    again = submit(rita, TWEAK)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] and again.json()["variant_hash"] == first.json()["variant_hash"]
    taken = submit(sam, TWEAK)
    assert taken.status_code == 409 and taken.json()["code"] == "conflict"
    assert "candidate" in taken.json()["message"]


def test_pending_submissions_per_account_are_limited(coordinator: Coordinator, make_worker) -> None:
    rita, rita_laptop = make_worker("desk", "rita"), make_worker("laptop", "rita")
    limit = coordinator.settings.max_pending_submissions
    for i in range(limit):
        assert submit(rita if i % 2 else rita_laptop, TWEAK + f"# {i}\n").status_code == 201
    over = submit(rita, TWEAK + "# one too many\n")
    assert over.status_code == 409 and over.json()["code"] == "too_many_pending"
    assert f"the limit is {limit}" in over.json()["message"]
    assert submit(make_worker("desk", "sam"), TWEAK + "# another account\n").status_code == 201


def test_a_parent_must_be_on_the_verified_lineage(coordinator: Coordinator, make_worker) -> None:
    alice, rita = make_worker("a1", "alice"), make_worker("laptop", "rita")
    calibrate(coordinator, [1.00, 1.00])
    discarded = alice.run(alice.lease(), 1.05)["variant_hash"]  # worse than its parent
    refused = submit(rita, TWEAK, parent=discarded[:12])
    assert refused.status_code == 400 and "verified lineage" in refused.json()["message"]
    unknown = submit(rita, TWEAK, parent="0" * 12)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_variant"
    baseline = detail(coordinator, variant_hash(BASELINE))["hash"]
    ok = submit(rita, TWEAK, parent=baseline[:7])
    assert ok.status_code == 201 and ok.json()["parent_hash"] == baseline


def test_a_forged_or_misdirected_submission_is_refused(coordinator: Coordinator, make_worker) -> None:
    rita, mallory = make_worker("laptop", "rita"), make_worker("m1", "mallory")
    payload = SubmissionPayload(track_id=TRACK, source=TWEAK, hypothesis="h").model_dump(mode="json", exclude_unset=True)
    forged = rita.post(f"/v1/tracks/{TRACK}/submissions", {"payload": payload, "signature": mallory.key.sign(payload)})
    assert (forged.status_code, forged.json()["code"]) == (403, "bad_signature")
    elsewhere = submit(rita, TWEAK, track_id="another-track")
    assert elsewhere.status_code == 422 and elsewhere.json()["code"] == "payload_mismatch"
    anonymous = coordinator.client.post(f"/v1/tracks/{TRACK}/submissions", json={"payload": payload, "signature": "x"})
    assert anonymous.status_code == 401
