"""Read models: what the leaderboard, the research log and the variant pages show."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coordinator.models import Run, Track, Variant
from coordinator.services.tracks import track_spec, variant_counts
from coordinator.services.variants import lineage
from coordinator.services.verification import track_sigma
from shared.hashing import short_hash
from shared.protocol import (
    CompactLogEntry,
    Leaderboard,
    LeaderboardEntry,
    LeaseKind,
    LogEntry,
    ResearchLog,
    RunStatus,
    RunSummary,
    TrackDetail,
    TrackSummary,
    VariantDetail,
    VariantOrigin,
    VariantStatus,
)


def track_summary(session: Session, track: Track) -> TrackSummary:
    counts = variant_counts(session, track.id)
    head = track.head
    return TrackSummary(
        id=track.id,
        name=track.name,
        hardware_class=track.hardware_class,
        time_budget_s=track.time_budget_s,
        head_hash=head.hash if head else None,
        head_val_bpb=head.val_bpb if head else None,
        variants=sum(counts.values()),
        verified=counts.get(VariantStatus.verified.value, 0),
    )


def track_detail(session: Session, track: Track) -> TrackDetail:
    baseline = track.baseline
    return TrackDetail(
        **track_summary(session, track).model_dump(),
        spec=track_spec(track).to_json(),
        brief=track.brief,
        quorum=track.quorum,
        tolerance=track.tolerance,
        noise_sigma=track_sigma(track),
        claim_margin=track.claim_margin,
        max_verifications=track.max_verifications,
        verify_timeout_s=track.verify_timeout_s,
        calibration_runs=track.calibration_runs,
        baseline_hash=baseline.hash if baseline else "",
        baseline_val_bpb=baseline.val_bpb if baseline else None,
    )


def _author(variant: Variant) -> str | None:
    return variant.author.display_name if variant.author else None


def leaderboard(session: Session, track: Track, *, limit: int = 100) -> Leaderboard:
    verified = list(
        session.scalars(
            select(Variant)
            .where(Variant.track_id == track.id, Variant.status == VariantStatus.verified.value, Variant.val_bpb.is_not(None))
            .order_by(Variant.val_bpb, Variant.id)
            .limit(limit)
        )
    )
    # Verify and calibration runs of every entry, in one query.
    runs = {
        variant_id: count
        for variant_id, count in session.execute(
            select(Run.variant_id, func.count())
            .where(Run.variant_id.in_([v.id for v in verified]), Run.kind != LeaseKind.explore.value)
            .group_by(Run.variant_id)
        )
    }
    baseline_val = track.baseline.val_bpb if track.baseline else None
    entries = []
    for rank, variant in enumerate(verified, start=1):
        assert variant.val_bpb is not None
        entries.append(
            LeaderboardEntry(
                rank=rank,
                hash=variant.hash,
                short_hash=short_hash(variant.hash),
                val_bpb=variant.val_bpb,
                delta_vs_baseline=None if baseline_val is None else variant.val_bpb - baseline_val,
                author=_author(variant),
                hypothesis=variant.hypothesis,
                verified_at=variant.verified_at,
                runs=runs.get(variant.id, 0),
                origin=VariantOrigin(variant.origin),
            )
        )
    return Leaderboard(
        track_id=track.id,
        baseline_hash=track.baseline.hash if track.baseline else "",
        baseline_val_bpb=baseline_val,
        entries=entries,
    )


def _encode_cursor(variant: Variant) -> str:
    return str(variant.id)


# A cursor is the last id of the page before, in decimal: every string the pattern admits is a
# position this log can page from (ids are positive INTEGERs: nine digits stay inside that type).
CURSOR_PATTERN = r"^[1-9][0-9]{0,8}$"


def research_log(
    session: Session,
    track: Track,
    *,
    limit: int = 50,
    cursor: str | None = None,
    status: VariantStatus | None = None,
    lineage_of: Variant | None = None,
    since: datetime | None = None,
    compact: bool = False,
) -> ResearchLog:
    """Every experiment on the track, newest first (the baseline root excluded), paged by cursor.

    `lineage_of` keeps the experiments made from that variant or any of its ancestors: what was
    already tried along the line an agent is about to extend.
    """
    query = select(Variant).where(Variant.track_id == track.id, Variant.parent_id.is_not(None))
    if status is not None:
        query = query.where(Variant.status == status.value)
    if lineage_of is not None:
        query = query.where(Variant.parent_id.in_([v.id for v in lineage(session, lineage_of)]))
    if since is not None:
        query = query.where(Variant.created_at >= since)
    if cursor is not None:
        query = query.where(Variant.id < int(cursor))
    rows = list(session.scalars(query.order_by(Variant.id.desc()).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = _encode_cursor(page[-1]) if more and page else None
    if compact:
        return ResearchLog(track_id=track.id, entries=[_compact(v) for v in page], next_cursor=next_cursor)
    entries = []
    for variant in page:
        entries.append(
            LogEntry(
                hash=variant.hash,
                parent_hash=variant.parent.hash if variant.parent else None,
                hypothesis=variant.hypothesis,
                status=VariantStatus(variant.status),
                val_bpb=variant.val_bpb if variant.val_bpb is not None else variant.claimed_val_bpb,
                parent_val_bpb=variant.parent_val_bpb,
                delta=_delta(variant),
                author=_author(variant),
                reason=variant.reason,
                created_at=variant.created_at,
                origin=VariantOrigin(variant.origin),
            )
        )
    return ResearchLog(track_id=track.id, entries=entries, next_cursor=next_cursor)


def _delta(variant: Variant) -> float | None:
    """Against its parent, negative is better: the verifiers' paired measurement where there is one,
    else the author's own (one machine, one seed), else the scores' difference."""
    for gain in (variant.verified_gain, variant.claimed_gain):
        if gain is not None:
            return 0.0 - gain
    value = variant.val_bpb if variant.val_bpb is not None else variant.claimed_val_bpb
    base = variant.parent_val_bpb
    return None if value is None or base is None else value - base


def _compact(variant: Variant) -> CompactLogEntry:
    return CompactLogEntry(
        hash=short_hash(variant.hash),
        parent=short_hash(variant.parent.hash) if variant.parent else None,
        status=VariantStatus(variant.status),
        delta=_delta(variant),
        hypothesis=variant.hypothesis,
    )


def variant_detail(session: Session, variant: Variant) -> VariantDetail:
    runs = session.scalars(select(Run).where(Run.variant_id == variant.id).order_by(Run.id))
    return VariantDetail(
        hash=variant.hash,
        track_id=variant.track_id,
        parent_hash=variant.parent.hash if variant.parent else None,
        lineage=[v.hash for v in lineage(session, variant)],
        status=VariantStatus(variant.status),
        hypothesis=variant.hypothesis,
        author=_author(variant),
        val_bpb=variant.val_bpb,
        holdout_bpb=variant.holdout_bpb,
        claimed_val_bpb=variant.claimed_val_bpb,
        reason=variant.reason,
        source=variant.source,
        signature=variant.signature,
        created_at=variant.created_at,
        verified_at=variant.verified_at,
        origin=VariantOrigin(variant.origin),
        runs=[
            RunSummary(
                id=run.id,
                kind=LeaseKind(run.kind),
                worker=run.worker.name,
                account=run.worker.account.name,
                seed=run.seed,
                status=RunStatus(run.status),
                layer=run.layer,
                code=run.code,
                reason=run.reason,
                val_bpb=run.val_bpb,
                holdout_bpb=run.holdout_bpb,
                steps=run.steps,
                train_seconds=run.train_seconds,
                created_at=run.created_at,
            )
            for run in runs
        ],
    )
