"""The Jinja2 environment of the web pages, and the HTML answer for what a browser asked for but is not there."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from coordinator.errors import DomainError
from shared.hashing import short_hash

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


def _bpb(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _gigabytes(count: int | None) -> str:
    return "—" if not count else f"{count / 1e9:.1f} GB"


templates.env.filters.update(bpb=_bpb, signed=_signed, when=_when, short=short_hash, gigabytes=_gigabytes)


def page(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def rendered(request: Request, name: str, context: dict[str, Any]) -> str:
    """A page's HTML, to be kept in the read cache (coordinator/read_cache.py)."""
    return bytes(page(request, name, context).body).decode()


def error_page(request: Request, error: DomainError) -> HTMLResponse:
    """A refusal as a page: a browser route answers HTML, never the API's JSON body."""
    tracks = error.detail.get("tracks", []) if isinstance(error.detail, dict) else []
    return page(
        request,
        "error.html",
        {"status": error.status_code, "message": error.message, "tracks": tracks},
        status_code=error.status_code,
    )
