"""Server-rendered pages: the global leaderboard and each track's live page.

A track page's live sections are one fragment, `/tracks/{id}/fragment`; /static/live.js refetches
it on each event of the track's stream, so the page is rendered in one place only.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from coordinator.api.deps import NowDep, SessionDep
from coordinator.api.rendering import error_page, page
from coordinator.errors import DomainError
from coordinator.services.overview import overview, top_contributors
from coordinator.services.pages import track_page
from coordinator.services.tracks import get_track

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, now: NowDep) -> HTMLResponse:
    context = {"tracks": overview(session, now=now), "contributors": top_contributors(session)}
    return page(request, "index.html", context)


def _track(request: Request, *, template: str, track_id: str, session: Session, now: datetime) -> HTMLResponse:
    try:
        view = track_page(session, get_track(session, track_id), now=now)
    except DomainError as exc:
        return error_page(request, exc)
    return page(request, template, {"page": view, "base_url": str(request.base_url).rstrip("/")})


@router.get("/tracks/{track_id}", response_class=HTMLResponse)
def track(track_id: str, request: Request, session: SessionDep, now: NowDep) -> HTMLResponse:
    return _track(request, template="track.html", track_id=track_id, session=session, now=now)


@router.get("/tracks/{track_id}/fragment", response_class=HTMLResponse)
def track_fragment(track_id: str, request: Request, session: SessionDep, now: NowDep) -> HTMLResponse:
    """The live sections of the track page, as the page itself renders them."""
    response = _track(request, template="_track_live.html", track_id=track_id, session=session, now=now)
    response.headers["Cache-Control"] = "no-store"
    return response
