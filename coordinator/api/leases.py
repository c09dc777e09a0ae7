from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Response, status

from coordinator.api.deps import CurrentWorker, NowDep, SessionDep, StateDep, SupportedWorker, WriterWorker
from coordinator.errors import DomainError
from coordinator.metrics import COMPLETED, ISSUED, RELEASED, Metrics
from coordinator.models import Lease as LeaseRow
from coordinator.models import Track
from coordinator.models import Variant as VariantRow
from coordinator.services import leases as lease_service
from coordinator.services.holdout import has_holdout, holdout_secret, holdout_windows
from coordinator.services.results import submit_result
from coordinator.services.verification import SpotCheckRates
from shared.protocol import (
    ErrorBody,
    ErrorCode,
    HeartbeatRequest,
    HeartbeatResponse,
    Lease,
    LeaseKind,
    LeaseRequest,
    LeaseResponse,
    ReleaseRequest,
    ResultRequest,
    ResultResponse,
    VariantRef,
    VariantStatus,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/leases", tags=["leases"])


def _ref(variant: VariantRow) -> VariantRef:
    return VariantRef(
        hash=variant.hash, track_id=variant.track_id, source=variant.source, signature=variant.signature or ""
    )


def _lease_out(lease: LeaseRow, track: Track, *, heartbeat_interval_s: float) -> Lease:
    return Lease(
        id=lease.id,
        kind=LeaseKind(lease.kind),
        track_id=lease.track_id,
        variant=_ref(lease.variant),
        control=_ref(lease.control) if lease.control is not None else None,
        seed=lease.seed,
        deadline=lease.deadline,
        heartbeat_interval_s=heartbeat_interval_s,
        time_budget_s=track.time_budget_s,
        holdout=has_holdout(track, lease.kind),
    )


@router.post(
    "",
    dependencies=[SupportedWorker],
    responses={426: {"model": ErrorBody, "description": "`worker_outdated`: the worker's User-Agent names a"
                     " release older than /v1/info's min_worker_version."}},
)
def request_lease(body: LeaseRequest, worker: WriterWorker, session: SessionDep, state: StateDep, now: NowDep) -> LeaseResponse:
    settings = state.settings
    # Overdue leases' work is owed again: swept here too (the reaper's interval is longer), but not
    # on every request.
    expired = lease_service.expire_overdue(session, now=now) if state.lease_sweep.due(now) else {}
    lease = lease_service.assign_lease(
        session, worker, track_id=body.track_id, now=now, slack_s=settings.lease_slack_s
    )
    session.commit()
    state.metrics.leases_expired(expired)
    if lease is None:
        return LeaseResponse(lease=None, retry_after_s=settings.no_work_retry_after_s)
    state.metrics.leases.labels(lease.kind, ISSUED).inc()
    log.info("lease %s: %s of %s on %s to worker %s", lease.id, lease.kind, lease.variant.hash[:12], lease.track_id, worker.id)
    track = lease.track
    state.read_cache.note_activity(track.id)
    state.kv.publish(track.id, {"type": "lease", "kind": lease.kind, "worker": worker.name})
    interval = lease_service.heartbeat_interval(track, shortest_s=settings.heartbeat_interval_s)
    return LeaseResponse(lease=_lease_out(lease, track, heartbeat_interval_s=interval))


_NPY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


@router.get(
    "/{lease_id}/holdout",
    response_class=Response,
    responses={
        200: {"content": _NPY, "description": "A `.npy` int array (N, seq_len + 1): N = ceil(eval_tokens / seq_len)"
              " windows of the track's held-out pool, uint16 (uint32 above 65536 tokens). The same bytes on"
              " every retry for one lease; read with numpy.load(allow_pickle=False)."},
        409: {"model": ErrorBody, "description": "`no_holdout`: an explore lease, or a track without a pool."},
    },
)
def holdout(lease_id: str, worker: CurrentWorker, session: SessionDep, state: StateDep, now: NowDep) -> Response:
    """The held-out windows a verify or calibrate lease is scored on, for its owner while it is live."""
    data = holdout_windows(
        session, lease_id, worker, now=now, pools=state.holdout_pools, secret=holdout_secret(state.signing_key)
    )
    return Response(content=data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


@router.post("/{lease_id}/heartbeat")
def heartbeat(
    lease_id: str, body: HeartbeatRequest, worker: CurrentWorker, session: SessionDep, state: StateDep, now: NowDep
) -> HeartbeatResponse:
    lease = lease_service.get_owned_lease(session, lease_id, worker, bare=True)
    deadline = lease_service.heartbeat(session, lease, now=now, slack_s=state.settings.lease_slack_s)
    session.commit()
    return HeartbeatResponse(deadline=deadline)


@router.post("/{lease_id}/release", status_code=status.HTTP_204_NO_CONTENT)
def release(
    lease_id: str, body: ReleaseRequest, worker: WriterWorker, session: SessionDep, state: StateDep, now: NowDep
) -> Response:
    lease = lease_service.get_owned_lease(session, lease_id, worker, for_update=True, bare=True)
    already = lease.state == lease_service.RELEASED
    lease_service.release(session, lease, reason=body.reason, now=now)
    session.commit()
    if not already:
        state.metrics.leases.labels(lease.kind, RELEASED).inc()
        log.info("lease %s: released by worker %s: %s", lease.id, worker.id, body.reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{lease_id}/result")
def result(
    lease_id: str, body: ResultRequest, worker: WriterWorker, session: SessionDep, state: StateDep, now: NowDep
) -> ResultResponse:
    rates = SpotCheckRates(
        untrusted=state.settings.spot_check_rate_untrusted, trusted=state.settings.spot_check_rate_trusted
    )
    outcome = submit_result(
        session, worker, lease_id, body, now=now, key=state.signing_key, spot_checks=rates,
        check_policy=state.policy_checks,
    )  # fmt: skip
    session.commit()
    if not outcome.duplicate:
        _count_result(state.metrics, body.payload.kind.value, outcome.run.status, outcome.variant, now=now)
        log.info(
            "lease %s: result %s from worker %s; variant %s is %s",
            lease_id, outcome.run.status, worker.id, outcome.variant.hash[:12], outcome.variant.status,
        )  # fmt: skip
    if outcome.policy_violations is not None and not outcome.duplicate:
        # Recorded as rejected (so the lease is not re-issued), then refused to the sender.
        raise DomainError(ErrorCode.policy_violation, outcome.policy_violations)
    if not outcome.duplicate:
        state.kv.publish(
            outcome.variant.track_id,
            {"type": "result", "kind": body.payload.kind.value, "variant": outcome.variant.hash,
             "status": outcome.variant.status},
        )
    return ResultResponse(
        run_id=outcome.run.id,
        duplicate=outcome.duplicate,
        variant_hash=outcome.variant.hash,
        variant_status=VariantStatus(outcome.variant.status),
        message=outcome.message,
    )


def _count_result(metrics: Metrics, kind: str, status: str, variant: VariantRow, *, now: datetime) -> None:
    metrics.leases.labels(kind, COMPLETED).inc()
    metrics.results.labels(kind, status).inc()
    promoted_now = variant.status == VariantStatus.verified.value and variant.verified_at == now
    if kind == LeaseKind.verify.value and promoted_now:
        metrics.promotions.labels(variant.track_id).inc()
