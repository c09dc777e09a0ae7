"""A researcher's own variant (`worker submit`), queued for verification by other accounts.

A submission is a candidate like any explore's, with two differences: it carries no claim (nothing
was measured, so the verifiers' paired runs alone decide it, under the same rule), and it may name
any variant of the verified lineage as its parent (the head when it names none). It is verified
against the current head, as every candidate is.

Retry, crash and duplicate behaviour: the variant is created in the request's transaction, so a
crash halfway stores nothing and the resend is taken as new. Resending a source this account
already submitted returns that variant with duplicate=True and creates nothing; a source anyone
else already put on the track is refused as a conflict, with its status (it was tried). A source
that breaks the policy is refused with every violation's code and line, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.models import Track, Variant, Worker
from coordinator.services.tracks import get_track
from coordinator.services.variants import MAX_REASON_LINES, create_variant_once, find_variant, policy_reason
from coordinator.services.verification import awaiting_reason
from shared.hashing import variant_hash
from shared.policy import PolicyReport, check_source
from shared.protocol import (
    ErrorCode,
    SubmissionRequest,
    VariantOrigin,
    VariantStatus,
    signed_fields,
)
from shared.signing import SignatureError, SigningKey, verify_signature


@dataclass(frozen=True)
class SubmissionOutcome:
    variant: Variant
    duplicate: bool
    message: str


def submit_variant(
    session: Session,
    worker: Worker,
    track_id: str,
    request: SubmissionRequest,
    *,
    key: SigningKey,
    max_pending: int,
    now: datetime,
    check_policy: Callable[[str], PolicyReport] = check_source,
) -> SubmissionOutcome:
    payload = request.payload
    if worker.quarantined or worker.account.quarantine_reason is not None:
        reason = worker.quarantine_reason or worker.account.quarantine_reason
        raise DomainError(ErrorCode.worker_quarantined, f"{worker.name} is quarantined: {reason}")
    try:
        verify_signature(worker.public_key, signed_fields(payload), request.signature)
    except SignatureError as exc:
        raise DomainError(ErrorCode.bad_signature, f"submission signature refused: {exc}") from exc
    if payload.track_id != track_id:
        raise DomainError(
            ErrorCode.payload_mismatch, f"the signed submission is for track {payload.track_id}, not {track_id}",
            detail={"field": "track_id"},
        )
    track = get_track(session, track_id)
    hash_ = variant_hash(payload.source)
    existing = find_variant(session, track_id=track.id, hash_=hash_)
    if existing is not None:
        return _resubmitted(existing, worker)
    _check_policy(check_policy(payload.source))
    parent = _parent(session, track, payload.parent_hash)
    if parent.hash == hash_:
        raise DomainError(ErrorCode.bad_request, "the submitted train.py is identical to its parent")
    _check_pending(session, worker, track, max_pending)
    variant, created = create_variant_once(
        session, track_id=track.id, source=payload.source, parent=parent, author=worker,
        hypothesis=payload.hypothesis, status=VariantStatus.candidate, key=key,
        reason=awaiting_reason(track), created_at=now,
    )  # fmt: skip
    if not created:  # the same source arrived at once on another request (or replica): a resend
        return _resubmitted(variant, worker)
    variant.origin = VariantOrigin.person.value
    session.flush()
    return SubmissionOutcome(
        variant=variant, duplicate=False,
        message=f"{hash_[:12]} queued on {track.id}: {awaiting_reason(track)}, paired with the head",
    )


def _resubmitted(existing: Variant, worker: Worker) -> SubmissionOutcome:
    author = existing.author
    if existing.origin == VariantOrigin.person.value and author is not None and author.account_id == worker.account_id:
        return SubmissionOutcome(
            variant=existing, duplicate=True, message=f"{existing.hash[:12]} was already submitted; it is {existing.status}"
        )
    raise DomainError(
        ErrorCode.conflict,
        f"this train.py is already on track {existing.track_id} as {existing.hash[:12]} ({existing.status})",
        detail={"hash": existing.hash, "status": existing.status},
    )


def _check_policy(report: PolicyReport) -> None:
    if report.ok:
        return
    shown = report.violations[:MAX_REASON_LINES]
    raise DomainError(
        ErrorCode.policy_violation,
        policy_reason(report.summary()),
        detail=[{"code": v.code, "line": v.line, "col": v.col, "message": v.message} for v in shown],
    )


def _parent(session: Session, track: Track, parent_hash: str | None) -> Variant:
    """The head, or the named variant when it is on the verified lineage (a commit of the track's git)."""
    if parent_hash is None:
        if track.head is None:
            raise DomainError(ErrorCode.conflict, f"track {track.id} has no head yet")
        return track.head
    matches = list(
        session.scalars(select(Variant).where(Variant.track_id == track.id, Variant.hash.startswith(parent_hash)))
    )
    if not matches:
        raise DomainError(ErrorCode.unknown_variant, f"no variant {parent_hash} on track {track.id}")
    if len(matches) > 1:
        raise DomainError(ErrorCode.ambiguous_variant, f"{parent_hash} names several variants; give more of the hash")
    parent = matches[0]
    if parent.status != VariantStatus.verified.value and parent.id != track.baseline_variant_id:
        raise DomainError(
            ErrorCode.bad_request,
            f"parent {parent.hash[:12]} is {parent.status}: a submission builds on the verified lineage",
        )
    return parent


def _check_pending(session: Session, worker: Worker, track: Track, max_pending: int) -> None:
    """A limit per account and track, so one researcher cannot fill the verifiers' queue."""
    pending = session.scalar(
        select(func.count(Variant.id))
        .join(Worker, Worker.id == Variant.author_worker_id)
        .where(
            Variant.track_id == track.id,
            Variant.origin == VariantOrigin.person.value,
            Variant.status == VariantStatus.candidate.value,
            Worker.account_id == worker.account_id,
        )
    )
    if pending is not None and pending >= max_pending:
        raise DomainError(
            ErrorCode.too_many_pending,
            f"account {worker.account.name} has {pending} submission(s) awaiting verification on {track.id}"
            f" (the limit is {max_pending}); submit more once they are decided",
        )
