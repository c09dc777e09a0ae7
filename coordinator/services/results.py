"""Taking a signed run report for a lease.

Retry, crash and duplicate behaviour: a report is stored in the same transaction that completes
its lease, so a crash halfway stores neither and the worker's resend is taken as new. An identical
resend after success (same canonical payload) returns the stored outcome with duplicate=True and
counts nothing twice. A different report for a completed lease, a report for another worker's or
an expired lease, and a report whose signature fails are refused with their own codes. So is an ok
report that lacks a score its lease asks for (`metrics.holdout_bpb` on a lease scored on held-out
windows, `control` on a paired lease) or carries one it does not: `payload_mismatch`, and nothing
is stored, so the lease's work is handed out again once it expires.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.models import Lease, Run, Track, Variant, Worker
from coordinator.services import leases as lease_service
from coordinator.services.holdout import has_holdout
from coordinator.services.tracks import get_track
from coordinator.services.variants import create_variant_once, find_variant, policy_reason
from coordinator.services.verification import (
    SpotCheckRates,
    awaiting_reason,
    claimed_gain,
    judge_claim,
    picked_for_spot_check,
    record_calibration,
    record_verification,
)
from shared.canonical import canonical_json
from shared.hashing import variant_hash
from shared.policy import PolicyReport, check_source
from shared.protocol import (
    ErrorCode,
    LeaseKind,
    ResultRequest,
    RunPayload,
    RunStatus,
    VariantStatus,
    signed_fields,
)
from shared.signing import SignatureError, SigningKey, verify_signature


@dataclass
class ResultOutcome:
    run: Run
    variant: Variant
    duplicate: bool
    message: str
    policy_violations: str | None = None


NO_SPOT_CHECKS = SpotCheckRates(untrusted=0.0, trusted=0.0)


def _payload_digest(payload: RunPayload) -> str:
    return hashlib.sha256(canonical_json(signed_fields(payload))).hexdigest()


def _check_matches_lease(payload: RunPayload, lease: Lease, worker: Worker) -> None:
    leased_hash = lease.variant.hash
    problems = []
    if payload.lease_id != lease.id:
        problems.append("lease_id")
    if payload.worker_id != worker.id:
        problems.append("worker_id")
    if payload.track_id != lease.track_id:
        problems.append("track_id")
    if payload.kind.value != lease.kind:
        problems.append("kind")
    if payload.seed != lease.seed:
        problems.append("seed")
    if payload.kind == LeaseKind.explore:
        if payload.parent_hash != leased_hash:
            problems.append("parent_hash")
        if payload.source is None or payload.variant_hash != variant_hash(payload.source):
            problems.append("variant_hash (must be the sha256 of source)")
    elif payload.variant_hash != leased_hash:
        problems.append("variant_hash")
    if problems:
        raise DomainError(
            ErrorCode.payload_mismatch,
            "the report does not match its lease: " + ", ".join(problems),
            detail={"fields": problems},
        )


def _mismatch(message: str, field: str) -> DomainError:
    return DomainError(ErrorCode.payload_mismatch, message, detail={"fields": [field]})


def _check_scores(payload: RunPayload, lease: Lease, track: Track) -> None:
    """An ok report carries exactly the scores its lease asks for: held-out beside public where the
    lease has windows, and the control's where the lease is paired (with the same held-out rule)."""
    ok = payload.status == RunStatus.ok
    held_out = has_holdout(track, lease.kind)
    halves = [("metrics", payload.metrics)]
    if lease.control_variant_id is not None:
        if ok and (payload.control is None or payload.control.val_bpb is None):
            raise _mismatch(
                f"this {lease.kind} lease is paired: an ok report must carry control.val_bpb, the score of"
                " the control variant trained first with the same seed",
                "control.val_bpb",
            )
        if payload.control is not None:
            halves.append(("control", payload.control))
    elif payload.control is not None:
        raise _mismatch(f"this {lease.kind} lease has no control, so its report cannot carry one", "control")
    for name, metrics in halves:
        if held_out and ok and metrics.holdout_bpb is None:
            raise _mismatch(
                f"this {lease.kind} lease is scored on held-out windows too: an ok report must carry"
                f" {name}.holdout_bpb beside {name}.val_bpb",
                f"{name}.holdout_bpb",
            )
        if not held_out and metrics.holdout_bpb is not None:
            raise _mismatch(
                f"this {lease.kind} lease has no held-out windows, so its report cannot carry {name}.holdout_bpb",
                f"{name}.holdout_bpb",
            )


def _run_from(payload: RunPayload, request: ResultRequest, digest: str, worker: Worker) -> Run:
    metrics = payload.metrics
    control = payload.control
    return Run(
        lease_id=payload.lease_id,
        worker_id=worker.id,
        kind=payload.kind.value,
        seed=payload.seed,
        status=payload.status.value,
        layer=payload.layer,
        code=payload.code,
        reason=payload.reason,
        val_bpb=metrics.val_bpb,
        holdout_bpb=metrics.holdout_bpb,
        control_val_bpb=control.val_bpb if control is not None else None,
        control_holdout_bpb=control.holdout_bpb if control is not None else None,
        control_metrics=control.model_dump(mode="json") if control is not None else None,
        steps=metrics.steps,
        train_seconds=metrics.train_seconds,
        metrics=metrics.model_dump(mode="json"),
        env=payload.env,
        agent=payload.agent.model_dump(mode="json") if payload.agent else None,
        payload_sha256=digest,
        signature=request.signature,
    )


def _explore_variant(
    session: Session,
    track: Track,
    lease: Lease,
    run: Run,
    payload: RunPayload,
    worker: Worker,
    key: SigningKey,
    spot_checks: SpotCheckRates,
    now: datetime,
    check_policy: Callable[[str], PolicyReport],
) -> tuple[Variant, str | None]:
    """The variant an explore run produced, created once; returns it and any policy refusal.

    Two agents may propose the same source at once (on two replicas, say): the one whose insert
    loses the race takes the variant the other stored, as if it had arrived second, rather than
    answering 409 to a worker whose run is valid (its outbox would drop a refused result)."""
    assert payload.source is not None  # checked by _check_matches_lease
    existing = find_variant(session, track_id=track.id, hash_=payload.variant_hash)
    if existing is not None:
        return existing, None
    report = check_policy(payload.source)
    common = {"track_id": track.id, "source": payload.source, "parent": lease.variant, "author": worker,
              "hypothesis": payload.hypothesis, "key": key}  # fmt: skip
    if not report.ok:
        reason = policy_reason(report.summary())
        variant, created = create_variant_once(session, status=VariantStatus.rejected, reason=reason, **common)
        return variant, reason if created else None
    outcome_reason: str | None = None
    gain: float | None = None
    if payload.status == RunStatus.ok:
        gain = claimed_gain(session, lease, run, worker)
        status = judge_claim(track, gain)
        if status is VariantStatus.candidate:
            outcome_reason = awaiting_reason(track)
    else:
        status = VariantStatus.crashed if payload.status == RunStatus.crashed else VariantStatus.rejected
        outcome_reason = payload.reason
    variant, created = create_variant_once(
        session, status=status, claimed_val_bpb=payload.metrics.val_bpb, claimed_gain=gain,
        reason=outcome_reason, created_at=now, **common,
    )  # fmt: skip
    if not created:
        return variant, None  # another request stored it first
    if status is VariantStatus.discarded and gain is not None:
        variant.spot_check = picked_for_spot_check(worker, spot_checks)
    return variant, None


def submit_result(
    session: Session,
    worker: Worker,
    lease_id: str,
    request: ResultRequest,
    *,
    now: datetime,
    key: SigningKey,
    spot_checks: SpotCheckRates = NO_SPOT_CHECKS,
    check_policy: Callable[[str], PolicyReport] = check_source,
) -> ResultOutcome:
    payload = request.payload
    lease = lease_service.get_owned_lease(session, lease_id, worker, for_update=True)
    _check_matches_lease(payload, lease, worker)
    try:
        verify_signature(worker.public_key, signed_fields(payload), request.signature)
    except SignatureError as exc:
        raise DomainError(ErrorCode.bad_signature, f"run report signature refused: {exc}") from exc

    digest = _payload_digest(payload)
    if lease.state == lease_service.COMPLETED:
        stored = session.scalars(select(Run).where(Run.lease_id == lease.id)).one()
        if stored.payload_sha256 != digest:
            raise DomainError(
                ErrorCode.lease_already_reported, f"lease {lease.id} already has a different result"
            )
        variant = session.get(Variant, stored.variant_id) if stored.variant_id else lease.variant
        assert variant is not None
        return ResultOutcome(run=stored, variant=variant, duplicate=True, message="already recorded")
    lease_service.ensure_live(lease, now=now)

    track = get_track(session, lease.track_id)
    _check_scores(payload, lease, track)
    run = _run_from(payload, request, digest, worker)
    violations = None
    if payload.kind == LeaseKind.explore:
        variant, violations = _explore_variant(
            session, track, lease, run, payload, worker, key, spot_checks, now, check_policy
        )
    else:
        variant = lease.variant
    run.variant_id = variant.id
    session.add(run)
    lease.state = lease_service.COMPLETED
    lease.finished_at = now
    session.flush()

    if payload.kind == LeaseKind.calibrate:
        record_calibration(session, track, variant)
    elif payload.kind == LeaseKind.verify:
        record_verification(session, track, variant, run, now=now)
    # Trust grows only with results someone else checked (services/verification.py).
    session.flush()
    return ResultOutcome(
        run=run,
        variant=variant,
        duplicate=False,
        message=f"{payload.kind.value} run recorded; variant is {variant.status}"
        + (f": {variant.reason}" if variant.status == VariantStatus.candidate.value and variant.reason else ""),
        policy_violations=violations,
    )
