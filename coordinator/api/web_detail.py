"""Server-rendered pages for one variant (source, diff, runs, lineage) and one volunteer account."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from coordinator.api.deps import SessionDep
from coordinator.api.rendering import error_page, page
from coordinator.errors import DomainError
from coordinator.services.credit import account_credit
from coordinator.services.pages import variant_page
from coordinator.services.variants import get_variant

router = APIRouter(include_in_schema=False)


@router.get("/variants/{variant_hash}", response_class=HTMLResponse)
def variant(variant_hash: str, request: Request, session: SessionDep, track_id: str | None = None) -> HTMLResponse:
    try:
        view = variant_page(session, get_variant(session, variant_hash, track_id=track_id))
    except DomainError as exc:
        return error_page(request, exc)
    return page(request, "variant.html", {"page": view, "base_url": str(request.base_url).rstrip("/")})


@router.get("/accounts/{name}", response_class=HTMLResponse)
def account(name: str, request: Request, session: SessionDep) -> HTMLResponse:
    try:
        credit = account_credit(session, name)
    except DomainError as exc:
        return error_page(request, exc)
    return page(request, "account.html", {"credit": credit})
