"""What the track and variant pages show, gathered from the read models in one place per page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.models import Run, Track, Variant
from coordinator.services import views
from coordinator.services.chart import Chart, progress_chart
from coordinator.services.diffs import DiffLine, unified_diff
from coordinator.services.experiments import count_finished, finished_experiments
from coordinator.services.exports import verified_line
from coordinator.services.overview import TrackOverview, track_overview
from coordinator.services.variants import lineage
from shared.hashing import short_hash
from shared.protocol import Leaderboard, ResearchLog, TrackDetail, VariantStatus

LOG_LENGTH = 30
CHART_EXPERIMENTS = 2000


@dataclass(frozen=True)
class TrackPage:
    track: TrackDetail
    overview: TrackOverview
    chart: Chart | None
    board: Leaderboard
    candidates: ResearchLog
    log: ResearchLog


def _chart(session: Session, track: Track) -> Chart | None:
    """The progress chart of the newest CHART_EXPERIMENTS experiments (a page of a track with a
    hundred thousand would be megabytes, and slow to build on every live refresh)."""
    experiments = finished_experiments(session, track, latest=CHART_EXPERIMENTS, with_memory=False)
    total = count_finished(session, track) if len(experiments) > CHART_EXPERIMENTS else len(experiments)
    return progress_chart(experiments, line=verified_line(session, track), head=track.head, total=total)


def track_page(session: Session, track: Track, *, now: datetime) -> TrackPage:
    return TrackPage(
        track=views.track_detail(session, track),
        overview=track_overview(session, track, now=now),
        chart=_chart(session, track),
        board=views.leaderboard(session, track),
        candidates=views.research_log(session, track, status=VariantStatus.candidate, limit=100),
        log=views.research_log(session, track, limit=LOG_LENGTH),
    )


@dataclass(frozen=True)
class VariantPage:
    variant: Variant
    ancestors: list[Variant]  # root first, this variant excluded
    children: list[Variant]  # experiments made from it, newest first
    runs: list[Run]
    diff: list[DiffLine]
    is_head: bool


def variant_page(session: Session, variant: Variant) -> VariantPage:
    parent = variant.parent
    diff = []
    if parent is not None:
        diff = unified_diff(
            parent.source, variant.source,
            parent_name=f"{short_hash(parent.hash)}/train.py", child_name=f"{short_hash(variant.hash)}/train.py",
        )  # fmt: skip
    children = session.scalars(select(Variant).where(Variant.parent_id == variant.id).order_by(Variant.id.desc()).limit(50))
    track = session.get(Track, variant.track_id)
    return VariantPage(
        variant=variant,
        ancestors=list(reversed(lineage(session, variant)))[:-1],
        children=list(children),
        runs=list(session.scalars(select(Run).where(Run.variant_id == variant.id).order_by(Run.id))),
        diff=diff,
        is_head=track is not None and track.head_variant_id == variant.id,
    )
