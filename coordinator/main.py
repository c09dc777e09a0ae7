"""Build the FastAPI app: state, middleware, error mapping and routers. Nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from coordinator import __version__
from coordinator.api import events, exports, git, leases, submissions, tracks, web, web_detail, workers
from coordinator.api.deps import AppState
from coordinator.api.responses import ERROR_RESPONSES, domain_response, error_response
from coordinator.config import Settings
from coordinator.db import make_engine, make_session_factory
from coordinator.errors import DomainError, from_database_error
from coordinator.keys import load_signing_key
from coordinator.kv import KeyValue, make_kv
from coordinator.metrics import Metrics, RequestTimer
from coordinator.middleware import AdmissionControl, BodySizeLimit
from coordinator.models import utcnow
from coordinator.policy_checks import PolicyChecks
from coordinator.read_cache import make_read_cache, watch_commits
from coordinator.services.holdout import HoldoutPools
from coordinator.services.lineage_repo import LineageRepos
from coordinator.services.reaper import Reaper
from coordinator.services.tracks import cpu_tiny_params, ensure_cpu_tiny, quorum_shortfalls
from shared.protocol import API_PREFIX, MAX_BODY_BYTES, ErrorCode
from shared.signing import SigningKey
from shared.stacks import dump_stacks_on_signal

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
# The versioned JSON API, under API_PREFIX: every route of these is in the OpenAPI document.
API_ROUTERS = (
    workers.router, leases.router, tracks.router, events.router, submissions.router, exports.router,
)


def _invalid_message(errors: Sequence[Any]) -> str:
    """Name the first problem, so a refusal read in a log says what to fix."""
    message = "the request body or parameters are invalid"
    if not errors:
        return message
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"] if part != "body")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{message}: {where}: {first['msg']}{more}"


def _internal(request: Request, exc: BaseException) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, ErrorCode.internal, "the coordinator hit an unexpected error; it has been logged")


def bootstrap(settings: Settings, session_factory: sessionmaker[Session], signing_key: SigningKey) -> None:
    """Create the built-in tracks on first start (idempotent)."""
    if not settings.create_builtin_tracks:
        return
    settings.assets_dir.mkdir(parents=True, exist_ok=True)
    params = cpu_tiny_params(
        time_budget_s=settings.cpu_tiny_budget_s,
        quorum=settings.cpu_tiny_quorum,
        calibration_runs=settings.cpu_tiny_calibration_runs,
        tolerance=settings.cpu_tiny_tolerance,
        noise_sigma=settings.cpu_tiny_noise_sigma,
    )
    with session_factory() as session:
        ensure_cpu_tiny(
            session, assets_dir=settings.assets_dir, key=signing_key, params=params,
            cache_dir=settings.trackdata_cache_dir,
        )  # fmt: skip
        session.commit()


def warn_unmeetable_quorums(session_factory: sessionmaker[Session]) -> None:
    """Say so at start when a track's quorum needs more accounts than have ever joined its hardware
    class: its candidates would wait until they expire as unverified."""
    with session_factory() as session:
        for track, accounts in quorum_shortfalls(session):
            log.warning(
                "track %s needs verify runs from %d accounts besides the author's, but only %d account(s)"
                " have joined with hardware class %s: its candidates will wait, then expire as unverified",
                track.id, track.quorum, accounts, track.hardware_class,
            )


def prepare(settings: Settings) -> None:
    """Create the built-in tracks ahead of serving (idempotent): once, before several processes start."""
    engine = make_engine(settings.resolved_database_url)
    try:
        bootstrap(settings, make_session_factory(engine), load_signing_key(settings))
    finally:
        engine.dispose()


def create_app(
    settings: Settings | None = None,
    *,
    kv: KeyValue | None = None,
    clock: Callable[[], datetime] = utcnow,
    run_reaper: bool = True,
) -> FastAPI:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url, pool_size=settings.max_concurrent_requests)
    session_factory = make_session_factory(engine)
    kv = kv if kv is not None else make_kv(settings.redis_url, prefix=settings.redis_prefix)
    read_cache = make_read_cache(kv, settings)
    watch_commits(session_factory, read_cache)
    state = AppState(
        settings=settings,
        session_factory=session_factory,
        kv=kv,
        signing_key=load_signing_key(settings),
        clock=clock,
        holdout_pools=HoldoutPools(settings.assets_dir),
        metrics=Metrics(session_factory, engine),
        read_cache=read_cache,
        policy_checks=PolicyChecks(settings.policy_check_processes),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        dump_stacks_on_signal()  # in each serving process: `kill -USR1` shows where a hung one waits
        bootstrap(settings, state.session_factory, state.signing_key)
        warn_unmeetable_quorums(state.session_factory)
        reaper = Reaper(
            state.session_factory,
            clock=state.clock,
            interval_s=settings.reaper_interval_s,
            on_expired=state.metrics.leases_expired,
        )
        if run_reaper:
            reaper.start()
        try:
            yield
        finally:
            if run_reaper:
                reaper.stop()
            state.policy_checks.close()
            engine.dispose()

    app = FastAPI(title="Autoresearch Network coordinator", version=__version__, lifespan=lifespan)
    app.state.arn = state
    app.state.lineage_repos = LineageRepos()  # each track's git repository, rebuilt as it changes
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    # Outermost: a request waiting for admission holds nothing, not even its body.
    app.add_middleware(AdmissionControl, limit=settings.max_concurrent_requests, wait_s=settings.admission_wait_s)
    app.add_middleware(RequestTimer, metrics=state.metrics)  # outermost: shed requests are timed too

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return error_response(422, ErrorCode.bad_request, _invalid_message(exc.errors()), detail)

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        translated = from_database_error(exc)
        if translated is None:
            return _internal(request, exc)
        log.warning("%s %s: database error answered %d: %s", request.method, request.url.path,
                    translated.status_code, translated.message)
        return domain_response(translated)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = ErrorCode.not_found if exc.status_code == 404 else ErrorCode.bad_request
        headers = dict(exc.headers) if exc.headers else None  # 405 keeps its Allow
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.include_router(web.router)
    app.include_router(web_detail.router)
    app.include_router(git.router)  # git's own protocol at /git/<track>.git, outside the versioned API
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")  # the pages' stylesheet and script

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus exposition (coordinator/metrics.py)."""
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
