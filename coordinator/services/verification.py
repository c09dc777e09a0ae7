"""Judging results: calibration of the head, candidates, replicated verification, promotion.

On a track with a held-out pool, verify and calibrate runs carry two scores: `val_bpb` on the
public val shard, the text explore claims are measured on, and `holdout_bpb` on windows drawn
per lease from a pool no worker holds whole (services/holdout.py). So:

- a claim is judged against the head's public reference (an explore run has nothing else);
- a verify run must reproduce the claim on both: its public score within the tolerance of the
  claim, and its held-out score within the tolerance of the claim plus the track's public ->
  held-out shift (the head's held-out mean minus its public mean). A variant that memorised the
  public val shard claims a low public score it cannot repeat on held-out text;
- promotion compares the verifiers' held-out mean with the head's held-out reference, and the
  seed noise σ is measured on held-out calibration scores (which include window-sampling noise).

A track without a pool (made before pools existed) judges public scores throughout. The
promoted metric is always the verifiers' mean, never the author's claim. A candidate is promoted
only if that mean beats the head by more than the track's seed noise allows (2σ/√n).

The decisions are pure functions of scores (`calibrate`, `disagreement`, `quorum_verdict`); the
`record_*` functions apply them to the tables.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coordinator.models import Run, Track, Variant, Worker
from shared.protocol import LeaseKind, RunStatus, VariantStatus

QUARANTINE_AFTER_INVALID = 3


@dataclass(frozen=True)
class Score:
    """One valid run's scores: public val, and held-out where the lease had windows."""

    val_bpb: float
    holdout_bpb: float | None = None


@dataclass(frozen=True)
class Reference:
    """The head's means that candidates are judged against."""

    val_bpb: float | None
    holdout_bpb: float | None = None

    @property
    def shift(self) -> float:
        """How much higher the head scores on held-out text than on public val; 0 when unknown."""
        if self.val_bpb is None or self.holdout_bpb is None:
            return 0.0
        return self.holdout_bpb - self.val_bpb


@dataclass(frozen=True)
class Calibration:
    val_bpb: float
    holdout_bpb: float | None
    noise_sigma: float | None  # None until there are two scores to measure it on


@dataclass(frozen=True)
class Verdict:
    promoted: bool
    val_bpb: float  # the verifiers' public mean: for display and future claims
    holdout_bpb: float | None  # the verifiers' held-out mean, when every verifier had windows
    reason: str | None


def noise_margin(noise_sigma: float | None, n: int) -> float:
    """How much a mean of n runs must beat the head by before it counts as real."""
    if noise_sigma is None or n <= 0:
        return 0.0
    return 2.0 * noise_sigma / math.sqrt(n)


def calibrate(scores: Sequence[Score]) -> Calibration | None:
    """The head's references and the track's σ from its calibration runs (None without runs)."""
    if not scores:
        return None
    public = [score.val_bpb for score in scores]
    held = [score.holdout_bpb for score in scores if score.holdout_bpb is not None]
    noisy = held or public  # promotion compares held-out means when there are any: measure σ there
    return Calibration(
        val_bpb=statistics.fmean(public),
        holdout_bpb=statistics.fmean(held) if held else None,
        noise_sigma=statistics.stdev(noisy) if len(noisy) >= 2 else None,
    )


def disagreement(score: Score, *, claimed: float | None, reference: Reference, tolerance: float) -> str | None:
    """Why one verify run does not reproduce the claim, or None when it does."""
    if claimed is None:
        return None
    if abs(score.val_bpb - claimed) > tolerance:
        return (
            f"not reproduced: a verifier measured {score.val_bpb:.4f} against the claimed {claimed:.4f}"
            f" (tolerance {tolerance:.4f})"
        )
    if score.holdout_bpb is not None and abs(score.holdout_bpb - (claimed + reference.shift)) > tolerance:
        return (
            f"not reproduced on held-out text: a verifier measured {score.holdout_bpb:.4f} against"
            f" {claimed:.4f} claimed ({reference.shift:+.4f} public→held-out shift; tolerance {tolerance:.4f})"
        )
    return None


def quorum_verdict(scores: Sequence[Score], *, reference: Reference, noise_sigma: float | None) -> Verdict:
    """Promote when the verifiers' mean beats the head beyond the noise margin: held-out means
    when both sides have them, public means otherwise."""
    public = statistics.fmean(score.val_bpb for score in scores)
    held = [score.holdout_bpb for score in scores if score.holdout_bpb is not None]
    held_mean = statistics.fmean(held) if held and len(held) == len(scores) else None
    margin = noise_margin(noise_sigma, len(scores))
    head: float | None
    if held_mean is not None and reference.holdout_bpb is not None:
        measured, head, where = held_mean, reference.holdout_bpb, " on held-out text"
    else:
        measured, head, where = public, reference.val_bpb, ""
    if head is not None and measured < head - margin:
        return Verdict(promoted=True, val_bpb=public, holdout_bpb=held_mean, reason=None)
    shown = head if head is not None else math.nan
    return Verdict(
        promoted=False,
        val_bpb=public,
        holdout_bpb=held_mean,
        reason=(
            f"no significant improvement{where}: verifiers' mean {measured:.4f} vs head {shown:.4f}"
            f" (needs to beat it by {margin:.4f})"
        ),
    )


# --- applying the decisions ------------------------------------------------------------------


def ok_runs(session: Session, variant: Variant, kind: LeaseKind) -> list[Run]:
    return list(
        session.scalars(
            select(Run)
            .where(Run.variant_id == variant.id, Run.kind == kind.value, Run.status == RunStatus.ok.value)
            .order_by(Run.id)
        )
    )


def _scores(runs: Sequence[Run]) -> list[Score]:
    return [Score(val_bpb=run.val_bpb, holdout_bpb=run.holdout_bpb) for run in runs if run.val_bpb is not None]


def head_reference(track: Track) -> Reference:
    head = track.head
    if head is None:
        return Reference(val_bpb=None)
    return Reference(val_bpb=head.val_bpb, holdout_bpb=head.holdout_bpb)


def record_calibration(session: Session, track: Track, head: Variant) -> None:
    """Fold the head's calibration runs into its references and the track's noise estimate."""
    calibration = calibrate(_scores(ok_runs(session, head, LeaseKind.calibrate)))
    if calibration is None:
        return
    head.val_bpb = calibration.val_bpb
    head.holdout_bpb = calibration.holdout_bpb
    if calibration.noise_sigma is not None:
        track.noise_sigma = calibration.noise_sigma
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
    reference = head_reference(track)
    problem = disagreement(
        Score(val_bpb=run.val_bpb, holdout_bpb=run.holdout_bpb),
        claimed=candidate.claimed_val_bpb,
        reference=reference,
        tolerance=track.tolerance,
    )
    if problem is not None:
        candidate.status = VariantStatus.rejected.value
        candidate.reason = problem
        if author is not None:
            _mark_invalid(author)
        session.flush()
        return
    run.worker.valid_streak += 1

    verifications = ok_runs(session, candidate, LeaseKind.verify)
    if len(verifications) < track.quorum:
        session.flush()
        return
    verdict = quorum_verdict(_scores(verifications), reference=reference, noise_sigma=track.noise_sigma)
    candidate.val_bpb = verdict.val_bpb
    candidate.holdout_bpb = verdict.holdout_bpb
    candidate.parent_val_bpb = reference.val_bpb
    if verdict.promoted:
        candidate.status = VariantStatus.verified.value
        candidate.verified_at = now
        candidate.reason = None
        track.head_variant_id = candidate.id
        track.head = candidate
        if author is not None:
            author.valid_streak += 1
    else:
        candidate.status = VariantStatus.rejected.value
        candidate.reason = verdict.reason
    session.flush()
