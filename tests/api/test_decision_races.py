"""Two replicas deciding about one variant at once, played out in two real PostgreSQL transactions.

Each test opens the first transaction and leaves it uncommitted at the point where a replica would
be between its decision and its commit, then runs the second on another connection. That is the
window in which an unlocked read sees the world without the first one's work.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from coordinator.models import Lease, Run, Variant
from coordinator.models import Worker as WorkerRow
from coordinator.services.leases import assign_lease
from coordinator.services.results import submit_result
from coordinator.services.tracks import TrackParams
from shared.protocol import ResultRequest
from tests.api.conftest import TRACK, Coordinator, Worker, calibrate
from tests.services import fresh_postgres_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url() -> Iterator[str]:
    """PostgreSQL only: SQLite takes one writer at a time, so it has no such window."""
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture
def track_params(track_params: TrackParams) -> TrackParams:
    # One calibration run, so the second of two replicas must not hand it out again; two verify
    # runs for a quorum, so the two can arrive at once.
    return dataclasses.replace(track_params, quorum=2, calibration_runs=1)


def _lease(coordinator: Coordinator, session, worker: Worker) -> Lease | None:  # type: ignore[no-untyped-def]
    row = session.get(WorkerRow, worker.worker_id)
    return assign_lease(session, row, track_id=TRACK, now=coordinator.clock(), slack_s=60.0)


def test_the_heads_last_calibration_slot_goes_to_one_of_two_replicas_asking_at_once(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    with coordinator.session() as first, coordinator.session() as second:
        taken = _lease(coordinator, first, alice)  # not committed yet
        other = _lease(coordinator, second, bob)
        second.commit()
        first.commit()

    assert taken is not None and taken.kind == "calibrate"
    assert other is not None and other.kind == "explore"
    with coordinator.session() as session:
        calibrations = session.scalar(select(func.count()).select_from(Lease).where(Lease.kind == "calibrate"))
    assert calibrations == 1


def test_a_candidates_two_last_verify_results_taken_at_once_decide_it(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00])
    claim = alice.run(alice.lease(), 0.90)
    assert claim["variant_status"] == "candidate"
    leases = [bob.lease(), carol.lease()]
    assert [lease["kind"] for lease in leases] == ["verify", "verify"]
    reports = []
    for worker, lease in zip((bob, carol), leases, strict=True):
        payload = worker.report(lease, val_bpb=0.90)
        body = payload.model_dump(mode="json")
        # As the API receives it: parsed from the JSON the worker signed.
        reports.append(ResultRequest.model_validate({"payload": body, "signature": worker.key.sign(body)}))
    state = coordinator.client.app.state.arn  # type: ignore[attr-defined]

    def take(session, worker: Worker, lease: dict, request: ResultRequest) -> None:  # type: ignore[no-untyped-def]
        row = session.get(WorkerRow, worker.worker_id)
        submit_result(session, row, lease["id"], request, now=coordinator.clock(), key=state.signing_key)

    errors: list[BaseException] = []

    def second_replica() -> None:
        try:
            with coordinator.session() as session:
                take(session, carol, leases[1], reports[1])
                session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with coordinator.session() as first:
        take(first, bob, leases[0], reports[0])  # holds the candidate, not committed yet
        racer = threading.Thread(target=second_replica)
        racer.start()
        racer.join(timeout=1.0)
        # The second result waits for the first to be committed rather than deciding without it.
        assert racer.is_alive()
        first.commit()
    racer.join(timeout=30)
    assert not racer.is_alive() and not errors, errors

    with coordinator.session() as session:
        candidate = session.scalars(select(Variant).where(Variant.hash == claim["variant_hash"])).one()
        assert candidate.status == "verified", candidate.reason
        assert len(candidate.verified_by) == 2
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"] == claim["variant_hash"]


def test_two_explores_that_found_the_same_source_at_once_are_both_recorded_against_one_variant(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00])
    leases = [alice.lease(), bob.lease()]
    assert [lease["kind"] for lease in leases] == ["explore", "explore"]
    source = leases[0]["variant"]["source"] + "# the same idea, found twice\n"
    reports = []
    for worker, lease in zip((alice, bob), leases, strict=True):
        body = worker.report(lease, val_bpb=1.01, source=source).model_dump(mode="json")
        reports.append(ResultRequest.model_validate({"payload": body, "signature": worker.key.sign(body)}))
    state = coordinator.client.app.state.arn  # type: ignore[attr-defined]

    def take(session, worker: Worker, lease: dict, request: ResultRequest):  # type: ignore[no-untyped-def]
        row = session.get(WorkerRow, worker.worker_id)
        return submit_result(session, row, lease["id"], request, now=coordinator.clock(), key=state.signing_key)

    outcomes, errors = [], []

    def second_replica() -> None:
        try:
            with coordinator.session() as session:
                outcome = take(session, bob, leases[1], reports[1])
                session.commit()
                outcomes.append((outcome.variant.hash, outcome.variant.author_worker_id, outcome.duplicate))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with coordinator.session() as first:
        mine = take(first, alice, leases[0], reports[0])  # the variant stored, not committed yet
        racer = threading.Thread(target=second_replica)
        racer.start()
        racer.join(timeout=1.0)
        assert racer.is_alive()  # its insert of the same source waits on the first
        first.commit()
    racer.join(timeout=30)
    # Before, the loser's insert broke the unique index: a 409, and a worker's outbox drops a
    # refused result for good.
    assert not racer.is_alive() and not errors, errors
    assert outcomes == [(mine.variant.hash, alice.worker_id, False)]

    with coordinator.session() as session:
        variants = session.scalars(select(Variant).where(Variant.hash == mine.variant.hash)).all()
        assert len(variants) == 1
        states = session.scalars(select(Lease.state).where(Lease.id.in_([lease["id"] for lease in leases]))).all()
        assert states == ["completed", "completed"]
        runs = session.scalar(select(func.count()).select_from(Run).where(Run.variant_id == variants[0].id))
        assert runs == 2
