"""Error answers: the ErrorBody every failure is sent as, and the schema entries that say so."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from coordinator.errors import DomainError
from shared.protocol import ErrorBody, ErrorCode

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


def error_response(
    status: int, code: ErrorCode, message: str, detail: object = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(code=code, message=message, detail=detail).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers=headers)


def domain_response(exc: DomainError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.detail, exc.headers)
