from __future__ import annotations

from fastapi import APIRouter, Request, status

from coordinator import __version__
from coordinator.api.deps import IpWriteLimit, NowDep, SessionDep, StateDep, client_ip, limit_new_accounts
from coordinator.services.workers import account_exists, account_secret, register_worker
from shared.protocol import InfoResponse, RegisterRequest, RegisterResponse

router = APIRouter(tags=["workers"])


@router.get("/info")
def info(state: StateDep) -> InfoResponse:
    settings = state.settings
    return InfoResponse(
        name=settings.name,
        version=__version__,
        public_key=state.signing_key.public_key,
        min_worker_version=settings.min_worker_version,
        harness_version=settings.harness_version,
    )


@router.post("/workers", status_code=status.HTTP_201_CREATED, dependencies=[IpWriteLimit])
def register(
    body: RegisterRequest, request: Request, session: SessionDep, state: StateDep, now: NowDep
) -> RegisterResponse:
    if not account_exists(session, body.payload.account):
        limit_new_accounts(request, state)
    worker, token = register_worker(
        session, body, now=now, max_skew_s=state.settings.registration_max_skew_s, key=state.signing_key,
        address=client_ip(request),
    )  # fmt: skip
    session.commit()
    name = worker.account.name
    return RegisterResponse(
        worker_id=worker.id, token=token, account=name, account_secret=account_secret(state.signing_key, name)
    )
