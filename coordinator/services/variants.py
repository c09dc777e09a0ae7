"""Variants: creation with the coordinator's signature, lookup by hash, lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.keys import variant_signature_payload
from coordinator.models import Variant, Worker
from shared.hashing import variant_hash
from shared.protocol import ErrorCode, VariantStatus
from shared.signing import SigningKey

# A refusal shows this many violations: a hostile file can break thousands of rules at once.
MAX_REASON_LINES = 20

# Statuses whose source the coordinator vouches for by signing it (the ones it may lease out).
SIGNED_STATUSES = {VariantStatus.candidate, VariantStatus.verified}


def policy_reason(summary: str) -> str:
    """A policy refusal as stored and returned (PolicyReport.summary(): a line per violation)."""
    lines = summary.splitlines()
    shown = lines[:MAX_REASON_LINES]
    if len(lines) > MAX_REASON_LINES:
        shown.append(f"... and {len(lines) - MAX_REASON_LINES} more violations")
    return "refused by policy:\n" + "\n".join(shown)


def find_variant(session: Session, *, track_id: str, hash_: str) -> Variant | None:
    return session.scalars(select(Variant).where(Variant.track_id == track_id, Variant.hash == hash_)).one_or_none()


def get_variant(session: Session, hash_: str, *, track_id: str | None = None) -> Variant:
    query = select(Variant).where(Variant.hash == hash_)
    if track_id is not None:
        query = query.where(Variant.track_id == track_id)
    found = list(session.scalars(query))
    if not found:
        raise DomainError(ErrorCode.unknown_variant, f"no variant {hash_[:12]}" + (f" on {track_id}" if track_id else ""))
    if len(found) > 1:
        tracks = sorted(v.track_id for v in found)
        raise DomainError(
            ErrorCode.ambiguous_variant, "this source exists on several tracks; pass track_id", detail={"tracks": tracks}
        )
    return found[0]


def sign_variant(variant: Variant, key: SigningKey) -> None:
    variant.signature = key.sign(variant_signature_payload(track_id=variant.track_id, variant_hash=variant.hash))


def create_variant(
    session: Session,
    *,
    track_id: str,
    source: str,
    parent: Variant | None,
    author: Worker | None,
    hypothesis: str | None,
    status: VariantStatus,
    key: SigningKey,
    claimed_val_bpb: float | None = None,
    claimed_gain: float | None = None,
    reason: str | None = None,
    created_at: datetime | None = None,
) -> Variant:
    variant = Variant(
        track_id=track_id,
        hash=variant_hash(source),
        parent_id=parent.id if parent else None,
        author_worker_id=author.id if author else None,
        hypothesis=hypothesis,
        source=source,
        status=status.value,
        claimed_val_bpb=claimed_val_bpb,
        claimed_gain=claimed_gain,
        parent_val_bpb=parent.val_bpb if parent else None,
        reason=reason,
    )
    if created_at is not None:  # the coordinator's clock, which candidates' waiting limits are measured on
        variant.created_at = created_at
    if status in SIGNED_STATUSES:
        sign_variant(variant, key)
    session.add(variant)
    session.flush()
    return variant


def create_variant_once(session: Session, **fields: Any) -> tuple[Variant, bool]:
    """(create_variant(...), True), or (the variant of that source that another request, on this
    replica or another, stored at the same time, False): the one whose insert loses the race on the
    unique (track, hash) takes the winner's, as if it had arrived second. A savepoint keeps the
    caller's transaction."""
    try:
        with session.begin_nested():
            return create_variant(session, **fields), True
    except IntegrityError:
        raced = find_variant(session, track_id=fields["track_id"], hash_=variant_hash(fields["source"]))
        if raced is None:
            raise
        return raced, False


def lineage(session: Session, variant: Variant, *, limit: int | None = 200) -> list[Variant]:
    """This variant and its ancestors, newest first: the nearest `limit` of them (all with None)."""
    # One recursive query walks the parents, however long the line.
    walk = select(Variant.id, Variant.parent_id, literal(0).label("depth")).where(Variant.id == variant.id).cte(
        "walk", recursive=True
    )
    step = select(Variant.id, Variant.parent_id, (walk.c.depth + 1).label("depth")).where(Variant.id == walk.c.parent_id)
    if limit is not None:
        step = step.where(walk.c.depth + 1 < limit)
    walk = walk.union_all(step)
    ids = list(session.scalars(select(walk.c.id).order_by(walk.c.depth)))
    found = {v.id: v for v in session.scalars(select(Variant).where(Variant.id.in_(ids)))}
    return [found[i] for i in ids]
