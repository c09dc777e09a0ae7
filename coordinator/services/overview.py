"""The global leaderboard: how each track is doing, and who contributed the verified gains."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from coordinator.models import Account, Lease, Track, Variant, Worker
from coordinator.services.leases import ACTIVE as LEASE_ACTIVE
from coordinator.services.tracks import list_tracks
from shared.protocol import VariantStatus

RECENT = timedelta(hours=24)
# A worker counts as active on a track while it holds a lease there, or took one this recently.
ACTIVE = timedelta(hours=1)


@dataclass(frozen=True)
class TrackOverview:
    track: Track
    head: Variant | None
    gain: float | None  # baseline val_bpb minus the head's: positive is better
    verified: int  # promotions, the baseline not counted
    experiments_24h: int
    active_workers: int
    last_promotion: datetime | None


@dataclass(frozen=True)
class Contributor:
    account: str
    verified: int
    gain: float  # sum of the verifiers' paired gains of the account's promoted variants
    best: float | None  # the largest of those gains


def track_overview(session: Session, track: Track, *, now: datetime) -> TrackOverview:
    head, baseline = track.head, track.baseline
    gain = None
    if head is not None and baseline is not None and head.val_bpb is not None and baseline.val_bpb is not None:
        gain = baseline.val_bpb - head.val_bpb
    experiments = select(Variant).where(Variant.track_id == track.id, Variant.parent_id.is_not(None))
    promoted = experiments.where(Variant.status == VariantStatus.verified.value).subquery()
    recent = experiments.where(Variant.created_at >= now - RECENT).subquery()
    active = session.scalar(
        select(func.count(func.distinct(Lease.worker_id))).where(
            Lease.track_id == track.id,
            or_(Lease.created_at >= now - ACTIVE, (Lease.state == LEASE_ACTIVE) & (Lease.deadline >= now)),
        )
    )
    return TrackOverview(
        track=track,
        head=head,
        gain=gain,
        verified=int(session.scalar(select(func.count()).select_from(promoted)) or 0),
        experiments_24h=int(session.scalar(select(func.count()).select_from(recent)) or 0),
        active_workers=int(active or 0),
        last_promotion=session.scalar(select(func.max(promoted.c.verified_at))),
    )


def overview(session: Session, *, now: datetime) -> list[TrackOverview]:
    return [track_overview(session, track, now=now) for track in list_tracks(session)]


def top_contributors(session: Session, *, limit: int = 10) -> list[Contributor]:
    gain = func.coalesce(Variant.verified_gain, 0.0)
    rows = session.execute(
        select(Account.name, func.count(Variant.id), func.sum(gain), func.max(Variant.verified_gain))
        .join(Worker, Worker.account_id == Account.id)
        .join(Variant, Variant.author_worker_id == Worker.id)
        .where(Variant.status == VariantStatus.verified.value, Variant.parent_id.is_not(None))
        .group_by(Account.name)
        .order_by(func.sum(gain).desc(), func.count(Variant.id).desc(), Account.name)
        .limit(limit)
    )
    return [Contributor(account=name, verified=count, gain=float(total or 0.0), best=best) for name, count, total, best in rows]
