"""Server-rendered pages: the global leaderboard and each track's live page.

A track page's live sections are one fragment, `/tracks/{id}/fragment`; /static/live.js refetches
it on each event of the track's stream, so the page is rendered in one place only. Each page is
rendered once per change of what it shows and kept in the read cache (coordinator/read_cache.py),
so the viewers that all refetch after one event cost one rendering.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from coordinator.api.deps import AppState, NowDep, SessionDep, StateDep
from coordinator.api.rendering import error_page, rendered
from coordinator.errors import DomainError
from coordinator.read_cache import ALL_PAGES, page_scope
from coordinator.services.overview import overview, top_contributors
from coordinator.services.pages import track_page
from coordinator.services.tracks import get_track

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, state: StateDep, now: NowDep) -> HTMLResponse:
    def render() -> str:
        context = {"tracks": overview(session, now=now), "contributors": top_contributors(session)}
        return rendered(request, "index.html", context)

    return HTMLResponse(state.read_cache.read_text(ALL_PAGES, "index.html", str(request.base_url), render))


def _track(
    request: Request, *, template: str, track_id: str, session: Session, state: AppState, now: datetime
) -> HTMLResponse:
    base_url = str(request.base_url).rstrip("/")

    def render() -> str:
        view = track_page(session, get_track(session, track_id), now=now)
        return rendered(request, template, {"page": view, "base_url": base_url})

    try:
        return HTMLResponse(state.read_cache.read_text(page_scope(track_id), template, base_url, render))
    except DomainError as exc:
        return error_page(request, exc)


@router.get("/tracks/{track_id}", response_class=HTMLResponse)
def track(track_id: str, request: Request, session: SessionDep, state: StateDep, now: NowDep) -> HTMLResponse:
    return _track(request, template="track.html", track_id=track_id, session=session, state=state, now=now)


@router.get("/tracks/{track_id}/fragment", response_class=HTMLResponse)
def track_fragment(
    track_id: str, request: Request, session: SessionDep, state: StateDep, now: NowDep
) -> HTMLResponse:
    """The live sections of the track page, as the page itself renders them."""
    response = _track(
        request, template="_track_live.html", track_id=track_id, session=session, state=state, now=now
    )
    response.headers["Cache-Control"] = "no-store"
    return response
