"""Admission control: requests beyond the limit wait, then are shed with 503 and Retry-After."""

from __future__ import annotations

import asyncio

import httpx
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from coordinator.middleware import AdmissionControl


def test_a_request_beyond_the_limit_is_shed_with_503_and_admitted_once_a_slot_frees() -> None:
    async def scenario() -> tuple[list[int], str | None, str]:
        inside, release = asyncio.Event(), asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"] == "/slow":
                inside.set()
                await release.wait()
            await PlainTextResponse(scope["path"])(scope, receive, send)

        guarded = AdmissionControl(app, limit=1, wait_s=0.2)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://test") as client:
            slow = asyncio.create_task(client.get("/slow"))
            await inside.wait()
            shed = await client.get("/v1/info")  # the one slot is taken for longer than it waits
            stream = await client.get("/v1/tracks/t/events")  # streams are not counted
            waiting = asyncio.create_task(client.get("/v1/info"))
            await asyncio.sleep(0.05)
            release.set()  # the slot frees while this one waits: it is admitted
            statuses = [(await slow).status_code, shed.status_code, stream.status_code, (await waiting).status_code]
            return statuses, shed.headers.get("Retry-After"), shed.json()["code"]

    statuses, retry_after, code = asyncio.run(scenario())

    assert statuses == [200, 503, 200, 200]
    assert code == "unavailable"
    assert retry_after is not None and int(retry_after) > 0
