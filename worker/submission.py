"""`worker submit`: send a researcher's own train.py to the network, and follow it to a verdict.

The file is checked here against the same policy the coordinator applies, so a refusal costs no
round trip; the coordinator checks it again (it trusts no client). The submission is signed with
this home's key, which is registered on first use with no hardware: a researcher lends no machine.
A resend of the same file (a retry after a lost answer) is answered with the same variant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.hashing import short_hash
from shared.policy import check_source
from shared.protocol import (
    SubmissionPayload,
    SubmissionRequest,
    SubmissionResponse,
    VariantDetail,
    VariantStatus,
    signed_fields,
)
from worker.client import CoordinatorClient
from worker.identity import WorkerHome, normalize_url
from worker.registration import NO_HARDWARE, register

# Statuses a submission can still leave: anything else is its verdict.
UNDECIDED = frozenset({VariantStatus.candidate})


class SubmissionError(Exception):
    """The file cannot be submitted as it is; the message says why and where."""


@dataclass(frozen=True)
class Submitted:
    response: SubmissionResponse
    url: str  # the variant's page

    @property
    def short_hash(self) -> str:
        return short_hash(self.response.variant_hash)


def read_checked(file: Path) -> str:
    """The file's text, refused with each violation's line and code when the policy would refuse it."""
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"cannot read {file}: {exc}") from None
    report = check_source(source)
    if not report.ok:
        lines = [f"{file}:{v.line}:{v.col + 1}: {v.code}: {v.message}" for v in report.violations]
        raise SubmissionError("the policy refuses this file:\n" + "\n".join(lines))
    return source


def submit(
    *,
    coordinator_url: str,
    track_id: str,
    source: str,
    hypothesis: str,
    parent_hash: str | None,
    home: WorkerHome,
    account: str | None,
) -> Submitted:
    url = normalize_url(coordinator_url)
    key = home.signing_key()
    with CoordinatorClient(url) as client:
        info = client.call(client.info)
        state = home.pin_coordinator(url, info.public_key)
        if account and state.account and account != state.account:
            raise SubmissionError(
                f"this home is registered with {url} as account {state.account!r}; use --account"
                f" {state.account} or another --home"
            )
        if state.registered:
            client.token = state.token
        else:
            register(client, home, state, key, name=None, account=account, hardware=NO_HARDWARE)
        payload = SubmissionPayload(track_id=track_id, source=source, hypothesis=hypothesis, parent_hash=parent_hash)
        request = SubmissionRequest(payload=payload, signature=key.sign(signed_fields(payload)))
        response = client.call(lambda: client.submit_variant(track_id, request))
    return Submitted(response=response, url=f"{url}/variants/{response.variant_hash}?track_id={track_id}")


def follow(
    coordinator_url: str,
    track_id: str,
    variant_hash: str,
    *,
    on_change: Callable[[VariantDetail], None],
    interval_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> VariantDetail:
    """Poll the variant until it is decided, calling `on_change` whenever its status or reason moves."""
    last: tuple[VariantStatus, str | None] | None = None
    with CoordinatorClient(normalize_url(coordinator_url)) as client:
        while True:
            detail = client.call(lambda: client.variant(variant_hash, track_id=track_id))
            if (detail.status, detail.reason) != last:
                last = (detail.status, detail.reason)
                on_change(detail)
            if detail.status not in UNDECIDED:
                return detail
            sleep(interval_s)
