"""Server-rendered pages for maintainers: the track list and each track's leaderboard."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from coordinator.api.deps import SessionDep
from coordinator.services import views
from coordinator.services.tracks import get_track, list_tracks

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> HTMLResponse:
    summaries = [views.track_summary(session, track) for track in list_tracks(session)]
    return templates.TemplateResponse(request, "index.html", {"tracks": summaries})


@router.get("/tracks/{track_id}", response_class=HTMLResponse)
def track_page(track_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    track = get_track(session, track_id)
    return templates.TemplateResponse(
        request,
        "leaderboard.html",
        {
            "track": views.track_detail(session, track),
            "board": views.leaderboard(session, track),
            "log": views.research_log(session, track, limit=20),
        },
    )
