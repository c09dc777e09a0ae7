"""Domain errors. Services raise them; one handler in main.py turns them into ErrorBody JSON."""

from __future__ import annotations

from typing import Any

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
    ErrorCode.lease_already_reported: 409,
    ErrorCode.lease_released: 409,
    ErrorCode.lease_expired: 410,
    ErrorCode.body_too_large: 413,
    ErrorCode.payload_mismatch: 422,
    ErrorCode.policy_violation: 422,
    ErrorCode.stale_registration: 422,
    ErrorCode.rate_limited: 429,
    ErrorCode.internal: 500,
}


class DomainError(Exception):
    def __init__(self, code: ErrorCode, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    @property
    def status_code(self) -> int:
        return _STATUS[self.code]
