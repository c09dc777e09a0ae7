"""Handing out work: calibrate, verify and explore leases; heartbeats; release; expiry.

What is owed is derived from the tables, never kept in a separate queue: a candidate needs
verify runs until active verify leases plus valid verify runs reach the track's quorum. An expired
or released lease stops counting, so its work is handed out again by the next request. That makes
the reaper idempotent and safe to run on any replica at any time.
"""

from __future__ import annotations

import collections
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from coordinator.errors import DomainError
from coordinator.models import Lease, Run, Track, Variant, Worker
from coordinator.services.tracks import get_track
from shared.protocol import ErrorCode, LeaseKind, RunStatus, VariantStatus

log = logging.getLogger(__name__)

ACTIVE = "active"
COMPLETED = "completed"
EXPIRED = "expired"
RELEASED = "released"


def lease_ttl(track: Track, *, slack_s: float) -> timedelta:
    """How long a lease lives without a heartbeat: one training run plus slack."""
    return timedelta(seconds=track.time_budget_s + track.grace_s + slack_s)


def new_seed() -> int:
    return secrets.randbits(31)


def _pending_count(session: Session, *, variant_id: int, kind: LeaseKind) -> int:
    """Active leases plus valid runs of `kind` on a variant: the work already under way or done."""
    active = session.scalar(
        select(func.count()).select_from(Lease).where(
            Lease.variant_id == variant_id, Lease.kind == kind.value, Lease.state == ACTIVE
        )
    )
    done = session.scalar(
        select(func.count()).select_from(Run).where(
            Run.variant_id == variant_id, Run.kind == kind.value, Run.status == RunStatus.ok.value
        )
    )
    return int(active or 0) + int(done or 0)


def _needs_calibration(session: Session, track: Track) -> Variant | None:
    head = track.head
    if head is None or head.id != track.baseline_variant_id:
        return None
    if _pending_count(session, variant_id=head.id, kind=LeaseKind.calibrate) >= track.calibration_runs:
        return None
    return head


def _candidate_for(session: Session, track: Track, worker: Worker) -> Variant | None:
    """The oldest candidate this worker may verify: another account's, not already leased to it, and
    not one this worker's account reported itself (two agents can propose the same source at once:
    a claim's verifier must not be one of its claimants)."""
    already_leased = select(Lease.variant_id).where(
        Lease.worker_id == worker.id, Lease.kind == LeaseKind.verify.value
    )
    claimant = aliased(Worker)
    claimed_by_account = (
        select(Run.variant_id)
        .join(claimant, claimant.id == Run.worker_id)
        .where(Run.kind == LeaseKind.explore.value, claimant.account_id == worker.account_id)
    )
    query = (
        select(Variant)
        .join(Worker, Worker.id == Variant.author_worker_id)
        .where(
            Variant.track_id == track.id,
            Variant.status == VariantStatus.candidate.value,
            Worker.account_id != worker.account_id,
            Variant.id.not_in(already_leased),
            Variant.id.not_in(claimed_by_account),
        )
        .order_by(Variant.created_at, Variant.id)
        # Two replicas must not both hand out the last verify slot of one candidate.
        .with_for_update(skip_locked=True, of=Variant)
    )
    for candidate in session.scalars(query):
        if _pending_count(session, variant_id=candidate.id, kind=LeaseKind.verify) < track.quorum:
            return candidate
    return None


def _calibrated(track: Track) -> bool:
    return track.head is not None and track.head.val_bpb is not None


def _eligible_tracks(session: Session, worker: Worker, track_id: str | None) -> list[Track]:
    if track_id is not None:
        track = get_track(session, track_id)
        if track.hardware_class != worker.hardware_class:
            raise DomainError(
                ErrorCode.forbidden,
                f"track {track.id} is pinned to hardware class {track.hardware_class!r};"
                f" this worker is {worker.hardware_class!r}",
            )
        return [track]
    return list(session.scalars(select(Track).where(Track.hardware_class == worker.hardware_class).order_by(Track.id)))


def assign_lease(
    session: Session, worker: Worker, *, track_id: str | None, now: datetime, slack_s: float
) -> Lease | None:
    """Pick the most useful work for `worker`: calibration, then verification, then exploration.

    Leases past their deadline still count as pending here until `expire_overdue` marks them;
    callers run it first.
    """
    if worker.quarantined:
        raise DomainError(ErrorCode.worker_quarantined, "this worker is quarantined after repeated invalid results")
    for track in _eligible_tracks(session, worker, track_id):
        choice: tuple[LeaseKind, Variant] | None = None
        if (head := _needs_calibration(session, track)) is not None:
            choice = (LeaseKind.calibrate, head)
        elif (candidate := _candidate_for(session, track, worker)) is not None:
            choice = (LeaseKind.verify, candidate)
        elif _calibrated(track) and track.head is not None:
            choice = (LeaseKind.explore, track.head)
        if choice is None:
            continue
        kind, variant = choice
        lease = Lease(
            id=uuid.uuid4().hex,
            track_id=track.id,
            kind=kind.value,
            variant_id=variant.id,
            worker_id=worker.id,
            seed=new_seed(),
            state=ACTIVE,
            deadline=now + lease_ttl(track, slack_s=slack_s),
        )
        session.add(lease)
        session.flush()
        session.refresh(lease)
        return lease
    return None


def get_owned_lease(session: Session, lease_id: str, worker: Worker, *, for_update: bool = False) -> Lease:
    query = select(Lease).where(Lease.id == lease_id)
    if for_update:
        query = query.with_for_update(of=Lease)
    lease = session.scalars(query).one_or_none()
    if lease is None:
        raise DomainError(ErrorCode.unknown_lease, f"no lease {lease_id}")
    if lease.worker_id != worker.id:
        raise DomainError(ErrorCode.not_lease_owner, "this lease belongs to another worker")
    return lease


def ensure_live(lease: Lease, *, now: datetime) -> None:
    """Raise unless the lease may still take a heartbeat or a result."""
    if lease.state == EXPIRED or (lease.state == ACTIVE and lease.deadline < now):
        raise DomainError(
            ErrorCode.lease_expired,
            f"lease {lease.id} expired at {lease.deadline.isoformat()}; its work was handed out again",
        )
    if lease.state == RELEASED:
        raise DomainError(ErrorCode.lease_released, f"lease {lease.id} was released: {lease.release_reason}")
    if lease.state == COMPLETED:
        raise DomainError(ErrorCode.lease_already_reported, f"lease {lease.id} already has its result")


def heartbeat(session: Session, lease: Lease, *, now: datetime, slack_s: float) -> datetime:
    ensure_live(lease, now=now)
    track = get_track(session, lease.track_id)
    new_deadline = now + lease_ttl(track, slack_s=slack_s)
    # Coalesce writes: only move the deadline when it gains more than a heartbeat's worth.
    if new_deadline - lease.deadline > timedelta(seconds=30):
        lease.deadline = new_deadline
        session.flush()
    return lease.deadline


def release(session: Session, lease: Lease, *, reason: str, now: datetime) -> None:
    """Give the lease's work back. Releasing twice is a no-op; releasing a finished lease is refused."""
    if lease.state == RELEASED:
        return
    ensure_live(lease, now=now)
    lease.state = RELEASED
    lease.release_reason = reason
    lease.finished_at = now
    session.flush()


def expire_overdue(session: Session, *, now: datetime) -> dict[str, int]:
    """Mark active leases past their deadline as expired. Returns how many of each kind; none if
    already done (idempotent: any replica may run it at any time)."""
    expired = session.execute(
        update(Lease)
        .where(Lease.state == ACTIVE, Lease.deadline < now)
        .values(state=EXPIRED, finished_at=now)
        .returning(Lease.id, Lease.kind, Lease.worker_id)
        .execution_options(synchronize_session=False)
    ).all()
    for lease_id, kind, worker_id in expired:
        log.info("lease %s: %s by worker %s expired; its work goes back to the queue", lease_id, kind, worker_id)
    kinds = [kind for _id, kind, _worker in expired]
    return dict(collections.Counter(kinds))
