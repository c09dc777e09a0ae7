"""Judging results: calibration of the head, candidates, replicated verification, promotion.

The promoted metric is always the verifiers' mean, never the author's claim. A candidate is
promoted only if that mean beats the current head by more than the track's seed noise allows
(2σ/√n, σ measured by calibration runs of the baseline).
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coordinator.models import Run, Track, Variant, Worker
from shared.protocol import LeaseKind, RunStatus, VariantStatus

QUARANTINE_AFTER_INVALID = 3


def ok_runs(session: Session, variant: Variant, kind: LeaseKind) -> list[Run]:
    return list(
        session.scalars(
            select(Run)
            .where(Run.variant_id == variant.id, Run.kind == kind.value, Run.status == RunStatus.ok.value)
            .order_by(Run.id)
        )
    )


def noise_margin(track: Track, n: int) -> float:
    """How much a mean of n runs must beat the head by before it counts as real."""
    if track.noise_sigma is None or n <= 0:
        return 0.0
    return 2.0 * track.noise_sigma / math.sqrt(n)


def record_calibration(session: Session, track: Track, head: Variant) -> None:
    """Fold the head's calibration runs into its metric and the track's noise estimate."""
    values = [run.val_bpb for run in ok_runs(session, head, LeaseKind.calibrate) if run.val_bpb is not None]
    if not values:
        return
    head.val_bpb = statistics.fmean(values)
    if len(values) >= 2:
        track.noise_sigma = statistics.stdev(values)
    session.flush()


def judge_claim(track: Track, claimed: float | None) -> VariantStatus:
    """An explore run's claim becomes a candidate only if it beats the head it was measured against."""
    head_val = track.head.val_bpb if track.head is not None else None
    if claimed is None or head_val is None or not math.isfinite(claimed):
        return VariantStatus.discarded
    return VariantStatus.candidate if claimed < head_val else VariantStatus.discarded


def _mark_invalid(worker: Worker) -> None:
    worker.valid_streak = 0
    worker.invalid_results += 1
    if worker.invalid_results >= QUARANTINE_AFTER_INVALID:
        worker.quarantined = True


def record_verification(session: Session, track: Track, candidate: Variant, run: Run, *, now: datetime) -> None:
    """Apply one verify run to a candidate: reject on disagreement, promote at quorum."""
    if candidate.status != VariantStatus.candidate.value:
        return  # already decided by an earlier run; this one is kept as a record only
    author = candidate.author
    if run.status != RunStatus.ok.value or run.val_bpb is None:
        # As in BOINC, an error result decides nothing: it may be the verifier's machine. The slot
        # is handed to another worker, and only a variant that keeps failing is rejected.
        failures = session.scalar(
            select(func.count()).select_from(Run).where(
                Run.variant_id == candidate.id, Run.kind == LeaseKind.verify.value, Run.status != RunStatus.ok.value
            )
        )
        if int(failures or 0) > track.quorum:
            candidate.status = VariantStatus.rejected.value
            candidate.reason = f"not reproduced: {failures} verify runs failed, the last: {run.reason or run.status}"
        session.flush()
        return
    claimed = candidate.claimed_val_bpb
    if claimed is not None and abs(run.val_bpb - claimed) > track.tolerance:
        candidate.status = VariantStatus.rejected.value
        candidate.reason = (
            f"not reproduced: a verifier measured {run.val_bpb:.4f} against the claimed {claimed:.4f}"
            f" (tolerance {track.tolerance:.4f})"
        )
        if author is not None:
            _mark_invalid(author)
        session.flush()
        return
    run.worker.valid_streak += 1

    verifications = ok_runs(session, candidate, LeaseKind.verify)
    if len(verifications) < track.quorum:
        session.flush()
        return
    mean = statistics.fmean(run.val_bpb for run in verifications if run.val_bpb is not None)
    head = track.head
    head_val = head.val_bpb if head is not None else None
    margin = noise_margin(track, len(verifications))
    candidate.val_bpb = mean
    candidate.parent_val_bpb = head_val
    if head_val is not None and mean < head_val - margin:
        candidate.status = VariantStatus.verified.value
        candidate.verified_at = now
        candidate.reason = None
        track.head_variant_id = candidate.id
        track.head = candidate
        if author is not None:
            author.valid_streak += 1
    else:
        candidate.status = VariantStatus.rejected.value
        candidate.reason = (
            f"no significant improvement: verifiers' mean {mean:.4f} vs head {head_val or float('nan'):.4f}"
            f" (needs to beat it by {margin:.4f})"
        )
    session.flush()
