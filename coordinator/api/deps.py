"""Request dependencies as `Annotated` aliases. Handlers touch no module globals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from coordinator.config import Settings
from coordinator.errors import DomainError
from coordinator.kv import KeyValue, window_reset_s
from coordinator.metrics import Metrics
from coordinator.models import Worker
from coordinator.policy_checks import PolicyChecks
from coordinator.read_cache import ReadCache
from coordinator.services.holdout import HoldoutPools
from coordinator.services.lineage_repo import LineageRepos
from coordinator.services.reaper import SweepGate
from coordinator.services.workers import authenticate, note_seen
from shared.protocol import ErrorCode
from shared.signing import SigningKey
from shared.versions import InvalidVersion, is_older, worker_version_of

LEASE_SWEEP_S = 5.0


@dataclass
class AppState:
    settings: Settings
    session_factory: sessionmaker[Session]
    kv: KeyValue
    signing_key: SigningKey
    clock: Callable[[], datetime]
    holdout_pools: HoldoutPools
    metrics: Metrics
    read_cache: ReadCache
    policy_checks: PolicyChecks
    # The lease path's expiry sweep, at most once per interval per process (services/reaper.py).
    lease_sweep: SweepGate = field(default_factory=lambda: SweepGate(timedelta(seconds=LEASE_SWEEP_S)))


# Dependencies that do no I/O are `async def`: FastAPI runs each plain `def` dependency in a thread
# of its own, a hand-off per dependency per request.


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.arn
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    session = state.session_factory()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_now(state: StateDep) -> datetime:
    return state.clock()


NowDep = Annotated[datetime, Depends(get_now)]

_bearer = HTTPBearer(auto_error=False)


def get_current_worker(
    state: StateDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Worker:
    worker = authenticate(session, credentials.credentials if credentials else None)
    note_seen(worker, now=state.clock())
    return worker


CurrentWorker = Annotated[Worker, Depends(get_current_worker)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_RATE_WINDOW_S = 60


def _rate_limited(whose: str) -> DomainError:
    return DomainError(
        ErrorCode.rate_limited,
        f"too many writes from this {whose}; slow down",
        retry_after_s=window_reset_s(_RATE_WINDOW_S),
    )


def limit_ip_writes(request: Request, state: StateDep) -> None:
    limit = state.settings.writes_per_minute_per_ip
    if not state.kv.hit(f"ip:{client_ip(request)}", limit=limit, window_s=_RATE_WINDOW_S):
        raise _rate_limited("address")


def limit_new_accounts(request: Request, state: StateDep) -> None:
    """Count one new account against the caller's address: at most the configured number an hour."""
    limit = state.settings.new_accounts_per_hour_per_ip
    if not state.kv.hit(f"new-account:{client_ip(request)}", limit=limit, window_s=3600):
        raise DomainError(
            ErrorCode.rate_limited,
            f"this address has created {limit} accounts in the last hour; join an existing account or wait",
            retry_after_s=window_reset_s(3600),
        )


def limit_worker_writes(worker: CurrentWorker, state: StateDep) -> Worker:
    limit = state.settings.writes_per_minute_per_worker
    if not state.kv.hit(f"worker:{worker.id}", limit=limit, window_s=_RATE_WINDOW_S):
        raise _rate_limited("worker")
    return worker


WriterWorker = Annotated[Worker, Depends(limit_worker_writes)]
IpWriteLimit = Depends(limit_ip_writes)


async def require_supported_worker(request: Request, state: StateDep) -> None:
    """Refuse a worker whose User-Agent names a release older than the coordinator accepts.

    Checked before authentication, so an outdated worker is told to upgrade whatever else is wrong.
    A client that names no worker release is let through (shared/versions.py says why).
    """
    version = worker_version_of(request.headers.get("user-agent"))
    if version is None:
        return
    wanted = state.settings.min_worker_version
    try:
        outdated = is_older(version, wanted)
    except InvalidVersion:
        outdated = True  # a worker release always has a version; nonsense is not one of ours
    if outdated:
        raise DomainError(
            ErrorCode.worker_outdated,
            f"this coordinator needs worker {wanted} or newer, and this is worker {version}:"
            " upgrade the worker and start it again",
            detail={"min_worker_version": wanted, "worker_version": version},
        )


SupportedWorker = Depends(require_supported_worker)


def get_lineage_repos(request: Request) -> LineageRepos:
    """Each track's lineage repository, kept per process (coordinator/main.py)."""
    repos: LineageRepos = request.app.state.lineage_repos
    return repos


LineageReposDep = Annotated[LineageRepos, Depends(get_lineage_repos)]
