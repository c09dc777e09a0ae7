"""Finished experiments of a track, oldest first, as autoresearch's results.tsv and progress chart see them.

An experiment is finished once nothing more will be measured of it: verified, rejected, discarded,
crashed, or expired unverified. Candidates are still waiting and are left out. The baseline comes
first once calibration has measured it, as autoresearch's first row is the unmodified train.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, defer

from coordinator.models import Run, Track, Variant
from shared.protocol import VariantStatus

FINISHED = (
    VariantStatus.verified,
    VariantStatus.rejected,
    VariantStatus.discarded,
    VariantStatus.crashed,
    VariantStatus.unverified,
)


class Outcome(StrEnum):
    """autoresearch's three words for how an experiment ended."""

    keep = "keep"  # verified: on the lineage
    discard = "discard"  # measured, but not kept
    crash = "crash"  # never produced a score: crashed, or refused before it could


@dataclass(frozen=True)
class Experiment:
    variant: Variant
    outcome: Outcome
    val_bpb: float | None  # the verified value where kept, else the author's own measurement
    peak_memory_bytes: int | None


def measured_bpb(variant: Variant) -> float | None:
    return variant.val_bpb if variant.val_bpb is not None else variant.claimed_val_bpb


def outcome(variant: Variant) -> Outcome:
    if variant.status == VariantStatus.verified.value:
        return Outcome.keep
    if variant.status == VariantStatus.crashed.value or measured_bpb(variant) is None:
        return Outcome.crash
    return Outcome.discard


def _peak_memory(session: Session, variant_ids: list[int]) -> dict[int, int]:
    """Each variant's peak memory from its first run that reported one (the author's, for an explore)."""
    peaks: dict[int, int] = {}
    rows = session.execute(
        select(Run.variant_id, Run.metrics).where(Run.variant_id.in_(variant_ids)).order_by(Run.id)
    )
    for variant_id, metrics in rows:
        peak = (metrics or {}).get("peak_memory_bytes")
        if variant_id is not None and variant_id not in peaks and isinstance(peak, int):
            peaks[variant_id] = peak
    return peaks


def _finished(track: Track) -> list[ColumnElement[bool]]:
    return [
        Variant.track_id == track.id,
        Variant.status.in_([status.value for status in FINISHED]),
        or_(Variant.parent_id.is_not(None), Variant.val_bpb.is_not(None)),
    ]


def finished_experiments(
    session: Session, track: Track, *, latest: int | None = None, with_memory: bool = True
) -> list[Experiment]:
    """The track's finished experiments, the baseline first, then in the order they were made.
    `latest` keeps only the newest that many (and the baseline); `with_memory` reads each one's
    peak memory from its runs."""
    query = select(Variant).where(*_finished(track))
    if latest is not None:
        newest = select(Variant.id).where(*_finished(track)).order_by(Variant.id.desc()).limit(latest)
        query = query.where(or_(Variant.id.in_(newest.scalar_subquery()), Variant.parent_id.is_(None)))
    variants = list(
        session.scalars(
            query.order_by(Variant.parent_id.is_not(None), Variant.id)  # the baseline root first
            # Every experiment of the track, on each live refresh: not their sources (kilobytes each).
            .options(defer(Variant.source))
        )
    )
    peaks = _peak_memory(session, [v.id for v in variants]) if with_memory else {}
    return [
        Experiment(variant=v, outcome=outcome(v), val_bpb=measured_bpb(v), peak_memory_bytes=peaks.get(v.id))
        for v in variants
    ]


def count_finished(session: Session, track: Track) -> int:
    return int(session.scalar(select(func.count()).select_from(Variant).where(*_finished(track))) or 0)
