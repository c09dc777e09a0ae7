"""ASGI middleware that guards the app before a request reaches it: body size and admission."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coordinator.api.responses import error_response
from coordinator.errors import UNAVAILABLE_RETRY_AFTER_S
from shared.protocol import ErrorCode


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
                await error_response(400, ErrorCode.bad_request, "Content-Length is not a number")(scope, receive, send)
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
        await error_response(413, ErrorCode.body_too_large, f"request body over {self.limit} bytes")(scope, receive, send)


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
            busy = error_response(
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
