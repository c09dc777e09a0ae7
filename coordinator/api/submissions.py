"""Researchers' own variants (`worker submit`): queued for verification by other accounts."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from coordinator.api.deps import NowDep, SessionDep, StateDep, WriterWorker
from coordinator.services.submissions import submit_variant
from shared.protocol import SubmissionRequest, SubmissionResponse, VariantOrigin, VariantStatus

log = logging.getLogger(__name__)
router = APIRouter(tags=["submissions"])


@router.post(
    "/tracks/{track_id}/submissions",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": SubmissionResponse, "description": "This account already submitted this source."}},
)
def submit(
    track_id: str, body: SubmissionRequest, response: Response, worker: WriterWorker, session: SessionDep,
    state: StateDep, now: NowDep,
) -> SubmissionResponse:
    """Queue a variant for verification: checked against the policy, signed by the coordinator, and
    verified by workers of other accounts under the same rule as any candidate."""
    outcome = submit_variant(
        session, worker, track_id, body, key=state.signing_key,
        max_pending=state.settings.max_pending_submissions, now=now, check_policy=state.policy_checks,
    )
    session.commit()
    variant = outcome.variant
    if outcome.duplicate:
        response.status_code = status.HTTP_200_OK
    else:
        log.info("track %s: %s submitted %s", track_id, worker.account.name, variant.hash[:12])
        state.kv.publish(
            track_id,
            {"type": "submission", "variant": variant.hash, "status": variant.status,
             "origin": VariantOrigin.person.value},
        )
    assert variant.parent is not None
    return SubmissionResponse(
        variant_hash=variant.hash, track_id=variant.track_id, parent_hash=variant.parent.hash,
        status=VariantStatus(variant.status), duplicate=outcome.duplicate, message=outcome.message,
    )
