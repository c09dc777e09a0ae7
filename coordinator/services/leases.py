"""Handing out work: calibrate, verify and explore leases; heartbeats; release; expiry.

What is owed is derived from the tables, never kept in a separate queue: a candidate takes verify
leases until the sequential test in services/verdicts.py decides it (at most the track's
`max_verifications`). An expired
or released lease stops counting, so its work is handed out again by the next request. That makes
the reaper idempotent and safe to run on any replica at any time.

Invariants, on any number of replicas sharing one PostgreSQL:
- A slot is handed out by the transaction holding its variant's row (FOR NO KEY UPDATE SKIP
  LOCKED): the head's calibration slots, a candidate's verify slots. The holder counts the slots
  under the lock; a request that finds the row held gives its worker other work instead of
  waiting, so no candidate gets more verify leases at once than it needs, nor a head more
  calibrations than the track asks for.
- Each lease's result counts once: results lock the lease row (`get_owned_lease(for_update=True)`)
  and a lease takes one result (services/results.py).
- Expiry is one conditional UPDATE (`expire_overdue`): a lease expires once, whichever replica
  runs it, and a lease that took its result first is never expired.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, and_, case, func, or_, select, union, update
from sqlalchemy.orm import Session, aliased, joinedload, lazyload

from coordinator.errors import DomainError
from coordinator.models import Lease, Run, Track, Variant, Worker
from coordinator.services.tracks import get_track
from shared.protocol import ErrorCode, LeaseKind, RunStatus, VariantStatus

log = logging.getLogger(__name__)

ACTIVE = "active"
COMPLETED = "completed"
EXPIRED = "expired"
RELEASED = "released"


def lease_ttl(track: Track, *, slack_s: float, runs: int = 1) -> timedelta:
    """How long a lease lives without a heartbeat: its training runs plus slack."""
    return timedelta(seconds=runs * (track.time_budget_s + track.grace_s) + slack_s)


# However often it heartbeats, a lease lives at most this many times its first lifetime. Training
# is timed (the harness stops a run at its budget and grace), so an honest lease is done well
# within it; without a bound, heartbeats alone would hold a head's audit slot or a candidate's
# verify slots for ever, and with them every promotion on the track.
LEASE_LIFETIME_FACTOR = 4


def lease_end(lease: Lease, *, slack_s: float) -> datetime:
    """The latest a lease may live to, whatever its heartbeats."""
    return lease.created_at + LEASE_LIFETIME_FACTOR * lease_ttl(lease.track, slack_s=slack_s, runs=_runs(lease))


def _runs(lease: Lease) -> int:
    return 2 if lease.control_variant_id is not None else 1


# A run heartbeats about this many times: often enough for the live pages to follow it, and on a
# long budget no more often than that needs (heartbeats are most of a network's requests).
HEARTBEATS_PER_RUN = 10
LONGEST_HEARTBEAT_INTERVAL_S = 60.0


def heartbeat_interval(track: Track, *, shortest_s: float) -> float:
    """The interval a lease asks its worker to heartbeat at: a tenth of the track's budget, at most
    a minute (a lease outlives its last heartbeat by the slack, minutes), never below `shortest_s`
    (the coordinator's setting)."""
    return max(shortest_s, min(LONGEST_HEARTBEAT_INTERVAL_S, track.time_budget_s / HEARTBEATS_PER_RUN))


def new_seed() -> int:
    return secrets.randbits(31)


TRUSTED_STREAK = 10  # consecutive valid results after which a worker counts as trusted on its track
REFERENCE_USES = 16  # explores a worker runs against one measurement of its parent before re-measuring it
# Verify work is spread over the workers that ask for it: a worker gets one of the oldest
# VERIFY_WINDOW candidates it may verify, picked by a hash of its account's id and theirs, so a
# ring cannot send its members to its own candidates by asking often or by registering fresh keys,
# and walking the queue by releasing leases stops after MAX_VERIFY_HANDBACKS in a day per account
# (an account whose machines hand back verify work often, when busy, then explores for the day).
VERIFY_WINDOW = 8
MAX_VERIFY_HANDBACKS = 3


def is_trusted(worker: Worker) -> bool:
    return worker.valid_streak >= TRUSTED_STREAK and not worker.quarantined


# A variant or control id: a number, or a column of an enclosing query (the candidate scan).
VariantId = int | SQLColumnExpression[Any] | None


def _pending(session: Session, *, variant_id: int, kind: LeaseKind) -> tuple[int, int]:
    """(active leases, valid runs) of `kind` on a variant: the work under way and done (one statement)."""
    row = session.execute(
        select(_active_leases(variant_id, kind).scalar_subquery(), _ok_runs(variant_id, kind).scalar_subquery())
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def _ok_runs(variant_id: int, kind: LeaseKind) -> Select[Any]:
    """How many valid runs of `kind` a variant has."""
    return select(func.count()).select_from(Run).where(
        Run.variant_id == variant_id, Run.kind == kind.value, Run.status == RunStatus.ok.value
    )


def _verify_runs(query: Select[Any], variant_id: VariantId, control_id: VariantId) -> Select[Any]:
    return (
        query.join(Lease, Lease.id == Run.lease_id)
        .join(Worker, Worker.id == Run.worker_id)
        .where(
            Run.variant_id == variant_id,
            Run.kind == LeaseKind.verify.value,
            Run.status == RunStatus.ok.value,
            Lease.control_variant_id == control_id,
            Worker.quarantined.is_(False),
        )
    )


def verify_runs_against(session: Session, variant_id: int, control_id: int | None) -> list[Run]:
    """A variant's valid verify runs paired with `control_id`: runs paired with an earlier head
    measured their gain over another reference, and no longer count; nor do a quarantined
    worker's."""
    return list(session.scalars(_verify_runs(select(Run), variant_id, control_id).order_by(Run.id)))


def _active_leases(variant_id: VariantId, kind: LeaseKind) -> Select[Any]:
    return select(func.count()).select_from(Lease).where(
        Lease.variant_id == variant_id, Lease.kind == kind.value, Lease.state == ACTIVE
    )


def _account_count(session: Session, *, variant_id: int, kind: LeaseKind, account_id: int) -> int:
    """Leases of `kind` on a variant held or completed by this account's workers."""
    return int(
        session.scalar(
            select(func.count()).select_from(Lease).join(Worker, Worker.id == Lease.worker_id).where(
                Lease.variant_id == variant_id,
                Lease.kind == kind.value,
                Lease.state.in_((ACTIVE, COMPLETED)),
                Worker.account_id == account_id,
            )
        )
        or 0
    )


def _involved_accounts(session: Session, head: Variant) -> set[int]:
    """The accounts that promoted the head: its author's and its verifiers'."""
    return set(session.scalars(_involved(head.id)))


def _involved(head_id: int) -> Select[Any]:
    """The accounts that promoted a head, as a query: its verifiers' and its author's."""
    verifier, author = aliased(Worker), aliased(Worker)
    verifiers = select(verifier.account_id).join(Lease, Lease.worker_id == verifier.id).where(
        Lease.variant_id == head_id, Lease.kind == LeaseKind.verify.value
    )
    authors = select(author.account_id).join(Variant, Variant.author_worker_id == author.id).where(Variant.id == head_id)
    return select(union(verifiers, authors).subquery().c[0])


def _auditors(track: Track, head_id: int) -> Select[Any]:
    """How many accounts on the track's hardware class took no part in the head's promotion."""
    return select(func.count(func.distinct(Worker.account_id))).where(
        Worker.hardware_class == track.hardware_class,
        Worker.quarantined.is_(False),
        Worker.account_id.not_in(_involved(head_id).correlate(None)),
    )


def calibration_runs_wanted(track: Track, audit_runs: int | None) -> int:
    """The calibration runs a head takes: the track's, or more while its audits split (its
    `audit_runs`, set by services/verification.record_calibration)."""
    return max(track.calibration_runs, audit_runs or 0)


def _needs_calibration(session: Session, track: Track, worker: Worker) -> Variant | None:
    """The head, while it has fewer calibration runs than the track asks for. Each account gives at
    most half of them, so no one account sets a head's shown value alone. The accounts that
    promoted a head (its author, its verifiers) do not calibrate it while any other account could:
    its calibration audits them. On a network too small for that (two accounts, say), a verifier's
    account calibrates it, for its shown value only; the author's never does."""
    head = track.head
    if head is None:
        return None
    wanted = calibration_runs_wanted(track, head.audit_runs)
    active, done = _pending(session, variant_id=head.id, kind=LeaseKind.calibrate)
    if active + done >= wanted:
        return None
    # Two replicas must not both hand out the head's last calibration slot: the one that holds the
    # head's row counts again under the lock; the other gives its worker other work this time.
    locked = session.scalar(
        select(Variant.id).where(Variant.id == head.id).with_for_update(skip_locked=True, key_share=True)
    )
    if locked is None:
        return None
    active, done = _pending(session, variant_id=head.id, kind=LeaseKind.calibrate)
    if active + done >= wanted:
        return None
    per_account = max(1, math.ceil(track.calibration_runs / 2))
    if _account_count(session, variant_id=head.id, kind=LeaseKind.calibrate, account_id=worker.account_id) >= per_account:
        return None
    if head.author is not None and head.author.account_id == worker.account_id:
        return None
    involved = _involved_accounts(session, head)
    if worker.account_id in involved and int(session.scalar(_auditors(track, head.id)) or 0) > 0:
        return None
    return head


def head_audited(session: Session, track: Track) -> bool:
    """Whether the head's promotion has had its audit (services/verification.record_calibration):
    calibration runs from as many uninvolved accounts as the track asks for, or as exist. Nothing
    is promoted over a head still awaiting its audit, so a fake cannot escape it by being built
    upon at once. The baseline has nothing to audit; a network with no uninvolved account cannot
    audit, and does not wait."""
    head = track.head
    if head is None:
        return True
    # Read from the database, not the session: another request may have promoted this head since
    # the session first loaded it (on SQLite, reads before a write see each commit as it lands).
    # One statement: the head's predecessor, the accounts that could audit it, its audits done.
    previous, audit_runs, auditors, calibrated = session.execute(
        select(
            select(Variant.previous_head_id).where(Variant.id == head.id).scalar_subquery(),
            select(Variant.audit_runs).where(Variant.id == head.id).scalar_subquery(),
            _auditors(track, head.id).scalar_subquery(),
            _ok_runs(head.id, LeaseKind.calibrate).scalar_subquery(),
        )
    ).one()
    if previous is None:
        return True
    return int(calibrated or 0) >= min(calibration_runs_wanted(track, audit_runs), int(auditors or 0))


def _verifier_rank(candidate_hash: str, worker: Worker) -> bytes:
    """Which open candidate a worker is sent to: by a hash of its account, not of the worker, so that
    registering fresh keys (free within one's own account) does not re-draw it."""
    return hashlib.sha256(f"verifier:{candidate_hash}:{worker.account_id}".encode()).digest()


def _handed_back_verifies(session: Session, worker: Worker, *, now: datetime) -> int:
    """Verify leases the worker's account handed back or let expire in the last day (per account, as
    the draw is, so that fresh keys do not reset it)."""
    return int(
        session.scalar(
            select(func.count()).select_from(Lease).join(Worker, Worker.id == Lease.worker_id).where(
                Worker.account_id == worker.account_id,
                Lease.kind == LeaseKind.verify.value,
                Lease.state.in_((RELEASED, EXPIRED)),
                Lease.finished_at > now - timedelta(days=1),
            )
        )
        or 0
    )


def _verify_work(track: Track) -> Select[Any]:
    """Each variant's (active verify leases, valid verify runs against its control): a candidate's
    control is the head, a spot check's its parent. Select from it by Variant.id."""
    control = case((Variant.status == VariantStatus.candidate.value, track.head_variant_id), else_=Variant.parent_id)
    active = _active_leases(Variant.id, LeaseKind.verify)
    runs = _verify_runs(select(func.count()).select_from(Run), Variant.id, control)
    return select(
        Variant.id, active.correlate(Variant).scalar_subquery(), runs.correlate(Variant).scalar_subquery()
    )


def _candidate_for(session: Session, track: Track, worker: Worker, *, now: datetime) -> Variant | None:
    """A variant this worker may verify: a candidate, or a negative result picked for a spot check;
    another account's, never leased to this account before, not one this worker's account reported
    itself (two agents can propose the same source at once: a claim's verifier must not be one of
    its claimants), and still short of verifiers: a candidate takes as many at once as it needs for
    a quorum, then one at a time, up to the track's cap; a spot check takes one.

    Past the count of this worker's hand-backs, three statements whatever the queue's length: lock
    the variants in view (their ids), count their verify work under the lock, load the one picked
    (with the head's audit asked in between when a candidate is among those open)."""
    if _handed_back_verifies(session, worker, now=now) >= MAX_VERIFY_HANDBACKS:
        return None
    claimant = aliased(Worker)
    claimed_by_account = (
        select(Run.variant_id)
        .join(claimant, claimant.id == Run.worker_id)
        .where(Run.kind == LeaseKind.explore.value, claimant.account_id == worker.account_id)
    )
    leased_by_account = (
        select(Lease.variant_id)
        .join(claimant, claimant.id == Lease.worker_id)
        .where(Lease.kind == LeaseKind.verify.value, claimant.account_id == worker.account_id)
    )
    query = (
        select(Variant.id, Variant.hash, Variant.status)
        .join(Worker, Worker.id == Variant.author_worker_id)
        .where(
            Variant.track_id == track.id,
            or_(
                Variant.status == VariantStatus.candidate.value,
                and_(Variant.status == VariantStatus.discarded.value, Variant.spot_check.is_(True)),
            ),
            Worker.account_id != worker.account_id,
            Variant.id.not_in(leased_by_account),
            Variant.id.not_in(claimed_by_account),
        )
        # Claims made against the current head first: a candidate whose parent has been replaced
        # is compared with a head it was never measured against, and its claim says little.
        .order_by(case((Variant.parent_id == track.head_variant_id, 0), else_=1), Variant.created_at, Variant.id)
        # Two replicas must not both hand out the last verify slot of one candidate. NO KEY UPDATE:
        # leases and runs that only reference a candidate do not make it skipped.
        .with_for_update(skip_locked=True, key_share=True, of=Variant)
    )
    in_view = session.execute(query).all()
    if not in_view:
        return None
    # Counted in a statement of their own, after the lock: a count taken by the locking statement
    # would read from before another replica's lease on the same row committed.
    work = {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in session.execute(
        _verify_work(track).where(Variant.id.in_([variant_id for variant_id, _hash, _status in in_view]))
    )}  # fmt: skip
    audited: bool | None = None  # asked once, and only when there is a candidate to ask it for
    open_slots: list[tuple[int, str]] = []
    for variant_id, variant_hash, status in in_view:
        active, done = work[variant_id]
        if status == VariantStatus.candidate.value:
            wanted = done + active < track.max_verifications and active < max(track.quorum - done, 1)
        else:
            wanted = done + active == 0
        if not wanted:
            continue
        if status == VariantStatus.candidate.value:
            if audited is None:
                audited = head_audited(session, track)
            if not audited:
                continue  # spot checks go on; candidates wait for the head's audit
        open_slots.append((variant_id, variant_hash))
        if len(open_slots) == VERIFY_WINDOW:
            break
    if not open_slots:
        return None
    picked, _hash = min(open_slots, key=lambda slot: _verifier_rank(slot[1], worker))
    return session.get(Variant, picked)


def explore_reference(session: Session, worker: Worker, parent: Variant) -> Run | None:
    """This worker's latest paired measurement of `parent` from an explore, while it is fresh:
    its explores of `parent` reuse that run's seed and are judged against its control score. It
    goes stale after REFERENCE_USES explores, or as soon as a claim judged against it is refuted
    (a parent measured on a busy machine makes every child look better)."""
    reference = session.scalars(
        select(Run)
        .join(Lease, Lease.id == Run.lease_id)
        .where(
            Run.worker_id == worker.id,
            Run.kind == LeaseKind.explore.value,
            Run.control_val_bpb.is_not(None),
            Lease.control_variant_id == parent.id,
        )
        .order_by(Run.id.desc())
        .limit(1)
    ).one_or_none()
    if reference is None:
        return None
    uses = session.scalar(
        select(func.count()).select_from(Run).join(Lease, Lease.id == Run.lease_id).where(
            Run.worker_id == worker.id, Lease.kind == LeaseKind.explore.value,
            Lease.variant_id == parent.id, Run.id > reference.id,
        )
    )
    if int(uses or 0) >= REFERENCE_USES:
        return None
    refuted = session.scalars(
        claims_on_measurement(worker, parent.id, reference.seed)
        .where(Run.id >= reference.id, Variant.claim_refuted.is_(True))
        .limit(1)
    ).first()
    return None if refuted is not None else reference


def claims_on_measurement(worker: Worker, parent_id: int | None, seed: int) -> Select[Variant]:
    """The variants `worker` claimed from explores of one parent with one seed: the claims judged
    against one measurement of that parent (the explore that measured it and those that reused it)."""
    return (
        select(Variant)
        .join(Run, Run.variant_id == Variant.id)
        .where(
            Variant.author_worker_id == worker.id,
            Variant.parent_id == parent_id,
            Run.worker_id == worker.id,
            Run.kind == LeaseKind.explore.value,
            Run.seed == seed,
        )
    )


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

    Verify leases are paired with the head as their control, and a promoted head's calibration
    with the head it replaced (an audit of its promotion). An explore lease is paired with its
    parent when this worker has no fresh measurement of it; otherwise it reuses that
    measurement's seed. Leases past their deadline still count as pending here until
    `expire_overdue` marks them (the reaper, and the lease path every few seconds).
    """
    if worker.quarantined:
        raise DomainError(
            ErrorCode.worker_quarantined,
            f"this worker is quarantined: {worker.quarantine_reason or 'repeated invalid results'}",
        )
    for track in _eligible_tracks(session, worker, track_id):
        head = track.head
        if head is None:
            continue
        seed = new_seed()
        control: Variant | None = None
        if (calibrated := _needs_calibration(session, track, worker)) is not None:
            kind, variant, control = LeaseKind.calibrate, calibrated, calibrated.previous_head
        elif (candidate := _candidate_for(session, track, worker, now=now)) is not None:
            # A spot check re-measures the claim as it was made: against the variant's parent.
            kind, variant = LeaseKind.verify, candidate
            control = candidate.parent if candidate.spot_check and candidate.parent is not None else head
        else:
            kind, variant = LeaseKind.explore, head
            reference = explore_reference(session, worker, head)
            if reference is None:
                control = head
            else:
                seed = reference.seed
        runs = 2 if control is not None else 1
        lease = Lease(
            id=uuid.uuid4().hex,
            track=track,
            kind=kind.value,
            variant=variant,
            control=control,
            worker=worker,
            seed=seed,
            state=ACTIVE,
            deadline=now + lease_ttl(track, slack_s=slack_s, runs=runs),
            created_at=now,  # the lease's end is counted from it, on the coordinator's clock
        )
        session.add(lease)
        session.flush()
        return lease
    return None


def get_owned_lease(
    session: Session, lease_id: str, worker: Worker, *, for_update: bool = False, bare: bool = False
) -> Lease:
    """The worker's lease, with its variants and its track, in one statement; `bare`: without the
    variants (their sources are most of a lease's bytes) and with only the track's budget, for a
    heartbeat or a release."""
    query = select(Lease).where(Lease.id == lease_id)
    if bare:
        query = query.options(
            lazyload(Lease.variant), lazyload(Lease.control), lazyload(Lease.worker),
            joinedload(Lease.track).load_only(Track.time_budget_s, Track.grace_s),
        )  # fmt: skip
    else:
        query = query.options(joinedload(Lease.track))  # a result reads the whole track next
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
    ttl = lease_ttl(lease.track, slack_s=slack_s, runs=_runs(lease))
    # Coalesced: the deadline is written only once less than half the lease's lifetime is left, so
    # a worker heartbeating every few seconds costs PostgreSQL one write per half lifetime (minutes),
    # and a lease does not expire while its heartbeats come, up to its end (LEASE_LIFETIME_FACTOR).
    # The deadline stays in the database (not in Redis), so expiry is right on every replica
    # whatever happens to Redis.
    if lease.deadline - now < ttl / 2:
        extended = min(now + ttl, lease_end(lease, slack_s=slack_s))
        if extended > lease.deadline:
            lease.deadline = extended
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
