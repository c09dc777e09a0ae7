"""Held-out windows per lease, and verification judged on held-out scores (a track with a pool)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from coordinator.models import Lease, Run
from coordinator.models import Worker as WorkerRow
from tests.api.conftest import NOISE_SIGMA, TRACK, Coordinator, Worker, calibrate
from worker.client import CoordinatorClient, CoordinatorError

POOL = np.random.default_rng(7).integers(1, 256, size=6000)
SEQ_LEN, EVAL_TOKENS = 32, 1024  # the test track's (tests/api/conftest.py)
WINDOW, WINDOWS = SEQ_LEN + 1, EVAL_TOKENS // SEQ_LEN


@pytest.fixture
def holdout_pool() -> np.ndarray:
    return POOL.copy()


def get_windows(worker: Worker, lease_id: str) -> Any:
    return worker.coordinator.client.get(f"/v1/leases/{lease_id}/holdout", headers=worker.headers)


def load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _runs(coordinator: Coordinator) -> int:
    with coordinator.session() as session:
        return int(session.scalar(select(func.count()).select_from(Run)) or 0)


# --- the windows ------------------------------------------------------------------------------


def test_verify_and_calibrate_leases_of_a_track_with_a_pool_are_scored_on_held_out_windows(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    first = alice.lease()
    assert (first["kind"], first["holdout"]) == ("calibrate", True)
    alice.run(first, 1.0, holdout_bpb=1.1)
    calibrate(coordinator, [1.0], holdout=[1.1])
    explore = alice.lease()
    assert (explore["kind"], explore["holdout"]) == ("explore", False)
    alice.run(explore, 0.9)
    verify = bob.lease()
    assert (verify["kind"], verify["holdout"]) == ("verify", True)


def test_a_lease_gets_the_same_windows_on_every_retry(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    first, second = get_windows(alice, lease["id"]), get_windows(alice, lease["id"])
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content


def test_different_leases_get_different_windows(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    mine, theirs = alice.lease(), bob.lease()
    assert mine["kind"] == theirs["kind"] == "calibrate"
    assert get_windows(alice, mine["id"]).content != get_windows(bob, theirs["id"]).content


def test_windows_are_an_npy_int_array_of_n_windows_of_seq_len_plus_one(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    response = get_windows(alice, alice.lease()["id"])
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["cache-control"] == "no-store"
    windows = load(response.content)
    assert (windows.shape, windows.dtype) == ((WINDOWS, WINDOW), np.dtype(np.uint16))


def test_every_window_is_a_contiguous_slice_of_the_pool_file(coordinator: Coordinator, make_worker) -> None:
    assert coordinator.holdout_sha256 is not None
    pool = np.load(coordinator.settings.assets_dir / coordinator.holdout_sha256, allow_pickle=False)
    slices = np.lib.stride_tricks.sliding_window_view(pool, WINDOW)
    alice = make_worker("a1", "alice")
    windows = load(get_windows(alice, alice.lease()["id"]).content)
    for window in windows:
        assert (slices == window).all(axis=1).any()
    # Drawn at random offsets, not read off in order.
    starts = [int(np.flatnonzero((slices == window).all(axis=1))[0]) for window in windows]
    assert starts != sorted(starts)


def test_an_explore_lease_has_no_held_out_windows(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0], holdout=[1.1, 1.1])
    lease = alice.lease()
    assert lease["kind"] == "explore"
    response = get_windows(alice, lease["id"])
    assert (response.status_code, response.json()["code"]) == (409, "no_holdout")
    assert response.json()["message"] == (
        f"lease {lease['id']} is an explore lease: only verify and calibrate leases are scored on held-out windows"
    )


def test_only_the_leases_owner_gets_its_windows(coordinator: Coordinator, make_worker) -> None:
    alice, mallory = make_worker("a1", "alice"), make_worker("m1", "mallory")
    lease = alice.lease()
    response = get_windows(mallory, lease["id"])
    assert (response.status_code, response.json()["code"]) == (403, "not_lease_owner")
    assert response.json()["message"] == "this lease belongs to another worker"
    anonymous = coordinator.client.get(f"/v1/leases/{lease['id']}/holdout")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    unknown = get_windows(alice, "f" * 32)
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["message"]) == (
        404, "unknown_lease", f"no lease {'f' * 32}"
    )


def test_windows_are_given_only_while_the_lease_is_live(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    reported, expiring = alice.lease(), bob.lease()
    alice.run(reported, 1.0, holdout_bpb=1.1)
    done = get_windows(alice, reported["id"])
    assert (done.status_code, done.json()["code"]) == (409, "lease_already_reported")
    coordinator.clock.advance(10 + 2 + 60 + 1)  # budget + grace + slack, then some
    expired = get_windows(bob, expiring["id"])
    assert (expired.status_code, expired.json()["code"]) == (410, "lease_expired")


def test_the_pool_is_never_served_as_a_track_asset(coordinator: Coordinator) -> None:
    assert coordinator.holdout_sha256 is not None
    assert (coordinator.settings.assets_dir / coordinator.holdout_sha256).is_file()
    response = coordinator.client.get(f"/v1/tracks/{TRACK}/assets/{coordinator.holdout_sha256}")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert response.json()["message"] == f"track {TRACK} has no asset {coordinator.holdout_sha256[:12]}"
    spec = coordinator.client.get(f"/v1/tracks/{TRACK}").json()["spec"]
    assert coordinator.holdout_sha256 not in str(spec)


class AppTransport(httpx.BaseTransport):
    """Carries the worker client's requests to the coordinator app."""

    def __init__(self, app_client: TestClient) -> None:
        self.app_client = app_client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.app_client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.read()
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def test_the_worker_client_fetches_a_leases_windows(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    with CoordinatorClient(
        "http://coordinator.test", token=alice.token, transport=AppTransport(coordinator.client)
    ) as client:
        data = client.holdout_windows(lease["id"])
        assert data == get_windows(alice, lease["id"]).content
        assert load(data).shape == (WINDOWS, WINDOW)
        alice.run(lease, 1.0, holdout_bpb=1.1)
        with pytest.raises(CoordinatorError) as refused:
            client.holdout_windows(lease["id"])
    assert (refused.value.code, refused.value.status) == ("lease_already_reported", 409)


# --- judging on held-out scores ---------------------------------------------------------------


def test_an_ok_verify_report_without_a_held_out_score_is_refused_and_nothing_is_stored(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.0, 1.0], holdout=[1.1, 1.1])
    alice.run(alice.lease(), 0.9)
    verify = bob.lease()
    runs = _runs(coordinator)
    response = bob.submit(bob.report(verify, val_bpb=0.9))
    assert (response.status_code, response.json()["code"]) == (422, "payload_mismatch")
    assert response.json()["message"] == (
        "this verify lease is scored on held-out windows too: an ok report must carry metrics.holdout_bpb"
        " beside metrics.val_bpb"
    )
    assert response.json()["detail"] == {"fields": ["metrics.holdout_bpb"]}
    assert _runs(coordinator) == runs
    with coordinator.session() as session:
        assert session.get(Lease, verify["id"]).state == "active"
    # A crashed run has no score to report, held-out or not.
    assert bob.run(verify, None, status="crashed")["variant_status"] == "candidate"  # type: ignore[arg-type]


def test_an_explore_report_cannot_carry_a_held_out_score(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0], holdout=[1.1, 1.1])
    response = alice.submit(alice.report(alice.lease(), val_bpb=0.9, holdout_bpb=0.9))
    assert (response.status_code, response.json()["code"]) == (422, "payload_mismatch")
    assert response.json()["message"] == (
        "this explore lease has no held-out windows, so its report cannot carry metrics.holdout_bpb"
    )


def test_calibration_sets_the_heads_shown_public_and_held_out_means(coordinator: Coordinator) -> None:
    calibrate(coordinator, [1.00, 1.02], holdout=[1.10, 1.16])
    track = coordinator.client.get(f"/v1/tracks/{TRACK}").json()
    assert track["head_val_bpb"] == pytest.approx(1.01)
    # Decisions use paired differences, whose σ calibration does not measure.
    assert track["noise_sigma"] == NOISE_SIGMA
    head = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()
    assert (head["val_bpb"], head["holdout_bpb"]) == (pytest.approx(1.01), pytest.approx(1.13))
    assert [run["holdout_bpb"] for run in head["runs"]] == [1.10, 1.16]


def test_a_claim_that_holds_on_public_val_but_not_on_held_out_text_is_refuted(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.0, 1.0], holdout=[1.015, 1.015])
    # A variant that memorised the public val shard: it repeats its public score anywhere.
    claim = alice.run(alice.lease(), 0.1312)
    assert claim["variant_status"] == "candidate"
    # Paired with the head on the same held-out windows, it is 3 bpb worse there.
    result = bob.run(bob.lease(), 0.1312, holdout_bpb=4.0213, control_holdout_bpb=1.015)
    assert result["variant_status"] == "rejected"
    detail = coordinator.client.get(f"/v1/variants/{claim['variant_hash']}?track_id={TRACK}").json()
    assert detail["reason"] == (
        "claim not reproduced: claimed a gain of 0.8688, verifiers measured -3.0063 (allowed shortfall 0.0500)"
    )
    with coordinator.session() as session:
        author = session.get(WorkerRow, alice.worker_id)
        assert (author.valid_streak, author.invalid_results) == (0, 1)


def test_a_candidate_is_promoted_on_held_out_differences_and_shown_at_its_calibrated_value(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00], holdout=[1.10, 1.10])
    claim = alice.run(alice.lease(), 0.90)
    assert bob.run(bob.lease(), 0.92, holdout_bpb=1.02, control_holdout_bpb=1.10)["variant_status"] == "verified"
    head = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()
    assert (head["hash"], head["val_bpb"], head["holdout_bpb"]) == (claim["variant_hash"], 0.92, 1.02)
    # The verifiers' mean was selected for being low; fresh calibration runs of the new head replace it.
    calibrate(coordinator, [0.93, 0.95], holdout=[1.03, 1.05])
    head = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()
    assert (head["val_bpb"], head["holdout_bpb"]) == (pytest.approx(0.94), pytest.approx(1.04))
    top = coordinator.client.get(f"/v1/tracks/{TRACK}/leaderboard").json()["entries"][0]
    assert (top["hash"], top["val_bpb"]) == (claim["variant_hash"], pytest.approx(0.94))
    # The next claim is paired with the new head on alice's machine, and verified against it on bob's.
    next_lease = alice.lease()
    assert next_lease["control"]["hash"] == claim["variant_hash"]
    assert alice.run(next_lease, 0.85, control_bpb=0.94)["variant_status"] == "candidate"
    verify = bob.lease()
    assert verify["control"]["hash"] == claim["variant_hash"]
    assert bob.run(verify, 0.86, holdout_bpb=0.96, control_bpb=0.94, control_holdout_bpb=1.04)["variant_status"] == "verified"


def test_an_improvement_on_public_val_alone_is_not_promoted(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00], holdout=[1.10, 1.10])
    claim = alice.run(alice.lease(), 0.97)
    assert bob.run(bob.lease(), 0.97, holdout_bpb=1.11, control_holdout_bpb=1.10)["variant_status"] == "rejected"
    detail = coordinator.client.get(f"/v1/variants/{claim['variant_hash']}?track_id={TRACK}").json()
    assert detail["reason"] == (
        "no significant improvement: verifiers measured a gain of -0.0100 over 1 paired runs (σ 0.0100)"
    )
    assert (detail["val_bpb"], detail["holdout_bpb"]) == (0.97, 1.11)
    with coordinator.session() as session:
        assert session.get(WorkerRow, alice.worker_id).invalid_results == 0  # an honest miss costs no trust


def test_the_openapi_document_describes_the_windows_as_binary(coordinator: Coordinator) -> None:
    route = coordinator.client.get("/openapi.json").json()["paths"]["/v1/leases/{lease_id}/holdout"]["get"]
    assert route["responses"]["200"]["content"] == {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }
    assert route["responses"]["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
