"""Build the FastAPI app: state, middleware, error mapping and routers. Nothing else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coordinator import __version__
from coordinator.api import events, leases, tracks, web, workers
from coordinator.api.deps import AppState
from coordinator.config import Settings
from coordinator.db import make_engine, make_session_factory
from coordinator.errors import UNAVAILABLE_RETRY_AFTER_S, DomainError, from_database_error
from coordinator.keys import load_signing_key
from coordinator.kv import KeyValue, make_kv
from coordinator.metrics import Metrics, RequestTimer
from coordinator.models import utcnow
from coordinator.services.holdout import HoldoutPools
from coordinator.services.reaper import Reaper
from coordinator.services.tracks import cpu_tiny_params, ensure_cpu_tiny
from shared.protocol import API_PREFIX, MAX_BODY_BYTES, ErrorBody, ErrorCode
from shared.signing import SigningKey

log = logging.getLogger(__name__)


# Every error the API answers has the ErrorBody shape; the schema says so (a listed 422 also keeps
# FastAPI from advertising its own validation-error shape, which this app never sends).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Missing or unknown token",
        403: "Refused: signature, ownership or quarantine",
        404: "No such track, variant or lease",
        409: "Conflicts with stored state",
        410: "The lease has expired",
        413: "Body over the size limit",
        422: "Invalid body or parameters",
        429: "Rate limited; see Retry-After",
        503: "Unavailable for now; see Retry-After",
    }.items()
}


def _error(
    status: int, code: ErrorCode, message: str, detail: object = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(code=code, message=message, detail=detail).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers=headers)


def _domain_response(exc: DomainError) -> JSONResponse:
    return _error(exc.status_code, exc.code, exc.message, exc.detail, exc.headers)


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
    return _error(500, ErrorCode.internal, "the coordinator hit an unexpected error; it has been logged")


class BodySizeLimit:
    """Refuse request bodies over `limit` bytes with 413, before the app reads them.

    A declared Content-Length is checked up front (the server holds the body to it). A body of
    undeclared length (chunked) is read here, up to the limit, and handed on whole: bodies are
    small, and a refusal raised while the app reads would reach the client as the framework's 400.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _error(400, ErrorCode.bad_request, "Content-Length is not a number")(scope, receive, send)
            elif int(declared) > self.limit:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away before its body ended
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects, for streaming responses
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error(413, ErrorCode.body_too_large, f"request body over {self.limit} bytes")(scope, receive, send)


class AdmissionControl:
    """At most `limit` requests inside the app at once; the rest wait up to `wait_s`, then get 503.

    An admitted request may hold a database connection while it waits for a worker thread, and
    the reverse. Admitting more requests than the pool has connections lets the two starve each
    other: every thread waits for a connection held by a request that waits for a thread, and the
    server answers nothing until the pool's timeout (seen with 100-200 workers asking at once).
    So admission is bounded by the pool, and overload is shed with a 503 and Retry-After, which
    workers wait out, instead of queueing without end. Event streams are not counted: once open
    they hold neither a connection nor a thread.
    """

    def __init__(self, app: ASGIApp, *, limit: int, wait_s: float) -> None:
        self.app = app
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith("/events"):
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.wait_s)
        except TimeoutError:
            busy = _error(
                503,
                ErrorCode.unavailable,
                "the coordinator is at capacity; retry shortly",
                headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
            )
            await busy(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


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
    )
    with session_factory() as session:
        ensure_cpu_tiny(session, assets_dir=settings.assets_dir, key=signing_key, params=params)
        session.commit()


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
    state = AppState(
        settings=settings,
        session_factory=session_factory,
        kv=kv if kv is not None else make_kv(settings.redis_url),
        signing_key=load_signing_key(settings),
        clock=clock,
        holdout_pools=HoldoutPools(settings.assets_dir),
        metrics=Metrics(session_factory, engine),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        bootstrap(settings, state.session_factory, state.signing_key)
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
            engine.dispose()

    app = FastAPI(title="Autoresearch Network coordinator", version=__version__, lifespan=lifespan)
    app.state.arn = state
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    # Outermost: a request waiting for admission holds nothing, not even its body.
    app.add_middleware(AdmissionControl, limit=settings.max_concurrent_requests, wait_s=settings.admission_wait_s)
    app.add_middleware(RequestTimer, metrics=state.metrics)  # outermost: shed requests are timed too

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return _domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _error(422, ErrorCode.bad_request, _invalid_message(exc.errors()), detail)

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        translated = from_database_error(exc)
        if translated is None:
            return _internal(request, exc)
        log.warning("%s %s: database error answered %d: %s", request.method, request.url.path,
                    translated.status_code, translated.message)
        return _domain_response(translated)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = ErrorCode.not_found if exc.status_code == 404 else ErrorCode.bad_request
        headers = dict(exc.headers) if exc.headers else None  # 405 keeps its Allow
        return _error(exc.status_code, code, str(exc.detail), headers=headers)

    for router in (workers.router, leases.router, tracks.router, events.router):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.include_router(web.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus exposition (coordinator/metrics.py)."""
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
