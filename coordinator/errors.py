"""Domain errors. Services raise them; handlers in main.py turn them into ErrorBody JSON.

Database failures that escape a route are translated here too (`from_database_error`), so a
client always gets a stable code: a value the database refuses is the request's fault (4xx), a
lost or exhausted connection is the coordinator's passing trouble (503 with Retry-After, which
workers treat as transient), and anything else is a logged 500 `internal`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

from shared.protocol import ErrorCode

_STATUS = {
    ErrorCode.bad_request: 400,
    ErrorCode.unauthorized: 401,
    ErrorCode.bad_signature: 403,
    ErrorCode.forbidden: 403,
    ErrorCode.not_lease_owner: 403,
    ErrorCode.worker_quarantined: 403,
    ErrorCode.not_found: 404,
    ErrorCode.unknown_track: 404,
    ErrorCode.unknown_variant: 404,
    ErrorCode.unknown_lease: 404,
    ErrorCode.ambiguous_variant: 409,
    ErrorCode.conflict: 409,
    ErrorCode.lease_already_reported: 409,
    ErrorCode.lease_released: 409,
    ErrorCode.no_holdout: 409,
    ErrorCode.too_many_pending: 409,
    ErrorCode.lease_expired: 410,
    ErrorCode.body_too_large: 413,
    ErrorCode.payload_mismatch: 422,
    ErrorCode.policy_violation: 422,
    ErrorCode.stale_registration: 422,
    ErrorCode.worker_outdated: 426,  # Upgrade Required
    ErrorCode.rate_limited: 429,
    ErrorCode.internal: 500,
    ErrorCode.unavailable: 503,
}

# How long a client should wait before retrying when the database is unreachable: long enough
# for a failover or a restart, short enough that a blip costs little.
UNAVAILABLE_RETRY_AFTER_S = 5


class DomainError(Exception):
    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        detail: Any = None,
        status_code: int | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self._status_code = status_code
        self.retry_after_s = retry_after_s

    @property
    def status_code(self) -> int:
        return self._status_code if self._status_code is not None else _STATUS[self.code]

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else None


def _first_line(error: BaseException) -> str:
    """The driver's own words, without the SQL statement and parameters SQLAlchemy appends."""
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def from_database_error(error: sa_exc.SQLAlchemyError) -> DomainError | None:
    """The client-facing error for a database failure, or None when it is a bug (a 500)."""
    lost = isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError) or lost:
        return DomainError(
            ErrorCode.unavailable,
            "the coordinator cannot reach its database right now; retry shortly",
            retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
        )
    if isinstance(error, sa_exc.DataError):
        cause = error.orig if error.orig is not None else error
        return DomainError(
            ErrorCode.bad_request, f"a value does not fit the database: {_first_line(cause)}", status_code=422
        )
    if isinstance(error, sa_exc.IntegrityError):
        cause = error.orig if error.orig is not None else error
        return DomainError(ErrorCode.conflict, f"the request conflicts with stored data: {_first_line(cause)}")
    return None
