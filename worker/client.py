"""A typed client for the coordinator's /v1 API, with failures classified before anyone retries.

Each endpoint method makes exactly one request and raises one of:

- `TransientError`: the request may succeed later (transport failure, timeout, 5xx, 408, 429).
  It carries the server's Retry-After when there was one.
- `CoordinatorError`: the coordinator refused the request for good (any other 4xx). It carries the
  stable `code` from the ErrorBody, the human `message`, the HTTP `status` and the body's `detail`
  (for a 422 `bad_request`, the fields that failed validation).
- `ProtocolError`: the answer is not what the protocol promises (not JSON, wrong shape).

Retrying is the caller's choice: `client.call(fn)` retries transient failures within the client's
RetryPolicy; `client.call_forever(fn)` keeps going until its interruptible wait is interrupted,
for loops that must outlast a coordinator restart. Both use exponential backoff with full jitter
and a cap, and wait exactly what the server asked for when it sent Retry-After.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from shared.protocol import (
    API_PREFIX,
    ErrorBody,
    HeartbeatRequest,
    HeartbeatResponse,
    InfoResponse,
    Leaderboard,
    LeaseRequest,
    LeaseResponse,
    RegisterRequest,
    RegisterResponse,
    ReleaseRequest,
    ResearchLog,
    ResultRequest,
    ResultResponse,
    SubmissionRequest,
    SubmissionResponse,
    TrackDetail,
    VariantDetail,
)
from worker import __version__

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Statuses that say "not now" rather than "no": the same request may succeed later.
TRANSIENT_STATUSES = frozenset({408, 429})
# A Retry-After beyond this is treated as a misconfiguration rather than obeyed for hours.
MAX_RETRY_AFTER_S = 3600.0
_CONTENT_RANGE = re.compile(r"^bytes (?:(?P<first>\d+)-(?P<last>\d+)|\*)/(?P<total>\d+|\*)$")


class ClientError(Exception):
    """Anything the coordinator client raises."""


class TransientError(ClientError):
    """The request failed in a way that may go away: worth retrying."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


class CoordinatorError(ClientError):
    """The coordinator refused the request definitively; retrying the same request will not help."""

    def __init__(self, code: str, message: str, status: int, *, detail: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.detail = detail


class ProtocolError(ClientError):
    """The coordinator's answer does not match the protocol."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying transient failures. None means no limit on that axis."""

    max_attempts: int | None = 6
    max_elapsed_s: float | None = 120.0
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0


FOREVER = RetryPolicy(max_attempts=None, max_elapsed_s=None)
ONCE = RetryPolicy(max_attempts=1)


def backoff_delay(attempt: int, *, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)].

    Full jitter spreads a crowd of workers that lost the coordinator at the same moment, so they do
    not all come back in the same second when it restarts.
    """
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** min(attempt, 30))
    return (rng or random).uniform(0.0, ceiling)


def sleep_uninterrupted(seconds: float) -> bool:
    """A `wait` that is never interrupted: sleeps, then reports "not interrupted"."""
    time.sleep(seconds)
    return False


def retrying(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    wait: Callable[[float], bool] = sleep_uninterrupted,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[TransientError, float], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Call `fn`, retrying TransientError under `policy`; re-raise the last one when it runs out.

    Other exceptions propagate at once. `wait(seconds)` sleeps between attempts and returns True
    when it was interrupted (threading.Event.wait has this shape), which ends the retrying with the
    last error: a daemon that is shutting down stops waiting for the coordinator.
    """
    started = clock()
    attempt = 0
    while True:
        try:
            return fn()
        except TransientError as exc:
            attempt += 1
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                raise
            if exc.retry_after_s is not None:
                delay = min(exc.retry_after_s, MAX_RETRY_AFTER_S)
            else:
                delay = backoff_delay(attempt - 1, policy=policy, rng=rng)
            if policy.max_elapsed_s is not None and clock() - started + delay > policy.max_elapsed_s:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            if wait(delay):
                raise


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_body(response: httpx.Response) -> tuple[str, str, Any]:
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        text = (
            response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
        )
        return f"http_{response.status_code}", text, None
    return body.code.value, body.message, body.detail


class CoordinatorClient:
    """One method per /v1 endpoint; each returns the protocol model the endpoint promises."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
        retry_policy: RetryPolicy | None = None,
        wait: Callable[[float], bool] = sleep_uninterrupted,
        on_retry: Callable[[TransientError, float], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retry_policy = retry_policy or RetryPolicy()
        self._wait = wait
        self._on_retry = on_retry
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers={"User-Agent": f"autoresearch-worker/{__version__}"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CoordinatorClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- retrying -----------------------------------------------------------------------------

    def call(
        self,
        fn: Callable[[], T],
        *,
        policy: RetryPolicy | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> T:
        """Run `fn` (a client method), retrying transient failures within `policy` (the client's by default).

        `wait` replaces the client's interruptible sleep for this call (see `retrying`).
        """
        return retrying(
            fn, policy=policy or self.retry_policy, wait=wait or self._wait, on_retry=self._on_retry
        )

    def call_forever(self, fn: Callable[[], T], *, wait: Callable[[float], bool] | None = None) -> T:
        """Like `call`, but transient failures are retried until `wait` reports an interruption."""
        return self.call(fn, policy=FOREVER, wait=wait)

    # --- transport ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        # Only the fields that were set: a signed report travels exactly as it was signed
        # (shared.protocol.signed_fields).
        content = body.model_dump_json(exclude_unset=True).encode("utf-8") if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method,
                path,
                content=content,
                params=params,
                headers=headers,
                timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {API_PREFIX}{path}: {type(exc).__name__}: {exc}") from exc
        self._raise_for_status(method, path, response)
        return response

    @staticmethod
    def _raise_for_status(method: str, path: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        code, message, detail = _error_body(response)
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise TransientError(
                f"{method} {API_PREFIX}{path}: HTTP {status} {code}: {message}",
                status=status,
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        raise CoordinatorError(code, message, status, detail=detail)

    @staticmethod
    def _parse(model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ProtocolError(
                f"{response.request.method} {response.request.url.path}: the answer is not a {model.__name__}"
                f" ({exc.error_count()} problems, first: {exc.errors()[0]['msg']})"
            ) from exc

    # --- endpoints ----------------------------------------------------------------------------

    def info(self) -> InfoResponse:
        return self._parse(InfoResponse, self._request("GET", "/info"))

    def register(self, request: RegisterRequest) -> RegisterResponse:
        return self._parse(RegisterResponse, self._request("POST", "/workers", body=request))

    def request_lease(self, track_id: str | None = None) -> LeaseResponse:
        return self._parse(
            LeaseResponse, self._request("POST", "/leases", body=LeaseRequest(track_id=track_id))
        )

    def heartbeat(
        self, lease_id: str, request: HeartbeatRequest, *, timeout_s: float = 10.0
    ) -> HeartbeatResponse:
        # A short timeout: a heartbeat that waits long is worth less than the next one.
        response = self._request("POST", f"/leases/{lease_id}/heartbeat", body=request, timeout_s=timeout_s)
        return self._parse(HeartbeatResponse, response)

    def release(self, lease_id: str, reason: str) -> None:
        self._request("POST", f"/leases/{lease_id}/release", body=ReleaseRequest(reason=reason[:2000]))

    def submit_result(self, lease_id: str, request: ResultRequest) -> ResultResponse:
        return self._parse(ResultResponse, self._request("POST", f"/leases/{lease_id}/result", body=request))

    def submit_variant(self, track_id: str, request: SubmissionRequest) -> SubmissionResponse:
        response = self._request("POST", f"/tracks/{track_id}/submissions", body=request)
        return self._parse(SubmissionResponse, response)

    def holdout_windows(self, lease_id: str) -> bytes:
        """The `.npy` bytes of a verify or calibrate lease's held-out windows (`Lease.holdout`).

        Read them with `numpy.load(io.BytesIO(data), allow_pickle=False)`: an int array of shape
        (N, seq_len + 1). A retry gets the same bytes; a lease without windows is `no_holdout`.
        """
        response = self._request("GET", f"/leases/{lease_id}/holdout")
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("application/octet-stream"):
            raise ProtocolError(
                f"GET {API_PREFIX}/leases/{lease_id}/holdout: expected application/octet-stream,"
                f" got {content_type or 'no content type'}"
            )
        return response.content

    def track(self, track_id: str) -> TrackDetail:
        return self._parse(TrackDetail, self._request("GET", f"/tracks/{track_id}"))

    def research_log(self, track_id: str, *, limit: int = 50, lineage: str | None = None) -> ResearchLog:
        """The newest experiments; with `lineage`, only those made from that variant or its ancestors."""
        params: dict[str, Any] = {"limit": limit}
        if lineage is not None:
            params["lineage"] = lineage
        return self._parse(ResearchLog, self._request("GET", f"/tracks/{track_id}/log", params=params))

    def leaderboard(self, track_id: str) -> Leaderboard:
        return self._parse(Leaderboard, self._request("GET", f"/tracks/{track_id}/leaderboard"))

    def variant(self, variant_hash: str, *, track_id: str) -> VariantDetail:
        response = self._request("GET", f"/variants/{variant_hash}", params={"track_id": track_id})
        return self._parse(VariantDetail, response)

    def download_asset(
        self,
        track_id: str,
        sha256: str,
        destination: Path,
        *,
        on_progress: Callable[[int, int | None], None] | None = None,
        throttle: Callable[[int], None] | None = None,
    ) -> None:
        """Stream one asset into `destination`, resuming what a partial file there already holds.

        With N bytes already in `destination` it asks for the rest (`Range: bytes=N-`) and appends
        a 206 that starts at N. A 200 (a server that ignores ranges) rewrites the file from the
        start. A 416 says nothing lies at or past N: a file that already has the asset's full size
        is left for the caller's hash check, anything else is fetched again from scratch. An
        interruption leaves what arrived in `destination`, so the next call goes on from there.

        `on_progress(done, total)` is called once the answer starts (with what the file already
        holds) and after each chunk; `throttle(n)` after each chunk of n bytes, and may sleep.
        """
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        offset = destination.stat().st_size if destination.exists() else 0
        if offset:
            headers["Range"] = f"bytes={offset}-"
        path = f"/tracks/{track_id}/assets/{sha256}"
        try:
            # Shards can be large: no read deadline for the whole body, only between chunks.
            with self._http.stream(
                "GET", path, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0)
            ) as response:
                if response.status_code == 416 and offset:
                    response.read()
                    if _content_range(response.headers.get("Content-Range"))[2] == offset:
                        if on_progress is not None:
                            on_progress(offset, offset)
                        return
                    destination.unlink()
                    restart = True
                else:
                    restart = False
                    self._stream_into(
                        response, path, destination, offset=offset, on_progress=on_progress, throttle=throttle
                    )
        except httpx.TransportError as exc:
            raise TransientError(f"GET {API_PREFIX}{path}: {type(exc).__name__}: {exc}") from exc
        if restart:
            self.download_asset(track_id, sha256, destination, on_progress=on_progress, throttle=throttle)

    def _stream_into(
        self,
        response: httpx.Response,
        path: str,
        destination: Path,
        *,
        offset: int,
        on_progress: Callable[[int, int | None], None] | None,
        throttle: Callable[[int], None] | None,
    ) -> None:
        if response.status_code >= 400:
            response.read()
            self._raise_for_status("GET", path, response)
        if response.status_code == 206:
            start, _end, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                destination.unlink()  # the next attempt starts clean
                raise ProtocolError(
                    f"GET {API_PREFIX}{path}: asked for bytes from {offset}, got"
                    f" Content-Range {response.headers.get('Content-Range')!r}"
                )
            done, mode = offset, "ab"
        else:  # the whole asset, whatever was asked
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done, mode = 0, "wb"
        if on_progress is not None:
            on_progress(done, total)
        with destination.open(mode) as handle:
            # Chunks as the network delivers them (no re-buffering): whatever arrived before a cut
            # is on disk, so the resumed request starts exactly where this one stopped.
            for chunk in response.iter_bytes():
                handle.write(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
                if throttle is not None:
                    throttle(len(chunk))


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(first byte, last byte, total size) from `bytes A-B/T` or `bytes */T`; None where absent."""
    match = _CONTENT_RANGE.match(value.strip()) if value else None
    if match is None:
        return None, None, None
    first, last, total = match.group("first", "last", "total")
    return (
        int(first) if first else None,
        int(last) if last else None,
        int(total) if total != "*" else None,
    )
