"""Server-sent events for live pages: one stream per track, fed through the KV event bus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from coordinator.api.deps import SessionDep, StateDep
from coordinator.services.tracks import get_track

router = APIRouter(tags=["events"])


@router.get(
    "/tracks/{track_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-sent events, one JSON object per `data:` line: `lease`, `result` and"
            " `submission` events, each with its `type`; a comment line every 15 s keeps the stream open.",
        }
    },
)
def events(track_id: str, session: SessionDep, state: StateDep) -> StreamingResponse:
    get_track(session, track_id)
    session.close()  # the stream may last hours; don't hold a connection

    async def stream() -> AsyncIterator[str]:
        # Asynchronous: an open page waiting for events holds no request thread.
        yield "retry: 5000\n\n"
        async for event in state.kv.listen(track_id, timeout_s=15):
            yield f"data: {json.dumps(event)}\n\n" if event is not None else ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
