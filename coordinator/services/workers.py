"""Worker registration and bearer-token authentication.

An account is a volunteer: one vote in every quorum, however many machines it has. Its first
machine creates it. A further machine joins it from an address one of its machines registered
from (a volunteer's machines at home, the GPUs of one box), or from anywhere with the account's
secret, which each of its machines is told when it registers and a maintainer can print. Without
that, any key could register under any account's name: cast that volunteer's vote on a candidate
(turning its own machines away from it) and act under every account whose name it knows, past the
limit on new accounts per address. While one of its machines is quarantined, no new one joins,
and a new one starts from the worst record among them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Executable, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.models import Account, Worker
from shared.protocol import ErrorCode, RegisterRequest
from shared.signing import SignatureError, SigningKey, check_public_key, verify_signature

# A worker's last_seen_at moves at most this often: it says when a machine was last active (on
# the account pages) without a database write on every request.
SEEN_RESOLUTION = timedelta(minutes=5)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def account_secret(key: SigningKey, account: str) -> str:
    """The secret a further machine shows to join `account` from an address new to it. It is derived
    from the coordinator's key (an HMAC under a key hashed from it, apart from its signatures), so
    every replica computes the same one and none is stored; it changes only with the coordinator's key."""
    mac_key = hashlib.sha256(b"arn account secrets\0" + key.raw()).digest()
    digest = hmac.new(mac_key, account.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def _may_join(
    places: Sequence[tuple[str | None, bool]], account: Account, *, secret: str | None, address: str, key: SigningKey
) -> bool:
    """Whether a new key may join `account`, whose machines' (address registered from, quarantined)
    are `places`: it has none yet, or the key shows the account's secret, or registers from an
    address one of them (not quarantined) registered from."""
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, and a client chooses them.
    if secret is not None and hmac.compare_digest(secret.encode("utf-8"), account_secret(key, account.name).encode()):
        return True
    return not places or any(place == address and not quarantined for place, quarantined in places)


def get_or_create_account(session: Session, name: str) -> Account:
    """The account of that name, created if new.

    Concurrent first registrations into one account (a volunteer starting several machines at
    once) race to create it: the insert does nothing when another request got there first, and
    both then read the one row.
    """
    query = select(Account).where(Account.name == name)
    account = session.scalars(query).one_or_none()
    if account is None:
        statement: Executable
        if session.get_bind().dialect.name == "postgresql":
            statement = postgresql.insert(Account).values(name=name).on_conflict_do_nothing(index_elements=["name"])
        else:
            statement = sqlite.insert(Account).values(name=name).on_conflict_do_nothing(index_elements=["name"])
        session.execute(statement)
        account = session.scalars(query).one()
    return account


def account_exists(session: Session, name: str) -> bool:
    return session.scalars(select(Account.id).where(Account.name == name)).first() is not None


def register_worker(
    session: Session, request: RegisterRequest, *, now: datetime, max_skew_s: float, key: SigningKey, address: str
) -> tuple[Worker, str]:
    """Register a worker, or rotate the token of one that holds an already-known key.

    The payload is signed by the key being registered (proof of possession) and carries its time,
    so a captured registration is useless after `max_skew_s`. Re-registering the same key (a worker
    that lost its token) keeps the worker id and invalidates the old token.
    """
    payload = request.payload
    try:
        check_public_key(payload.public_key)
        verify_signature(payload.public_key, payload.model_dump(mode="json"), request.signature)
    except SignatureError as exc:
        raise DomainError(ErrorCode.bad_signature, f"registration signature refused: {exc}") from exc
    skew = abs((now - payload.issued_at).total_seconds())
    if skew > max_skew_s:
        raise DomainError(
            ErrorCode.stale_registration,
            f"registration was issued {skew:.0f}s away from the coordinator's clock (limit {max_skew_s:.0f}s);"
            " check this machine's clock",
        )

    token = secrets.token_urlsafe(32)
    worker = session.scalars(select(Worker).where(Worker.public_key == payload.public_key)).one_or_none()
    if worker is not None:
        if worker.account.name != payload.account:
            raise DomainError(ErrorCode.forbidden, "this key is registered to another account")
        worker.token_hash = token_hash(token)
        worker.name = payload.name
        worker.hardware = payload.hardware.model_dump(mode="json")
        worker.hardware_class = payload.hardware.hardware_class
        worker.registered_from = address
        session.flush()
        return worker, token

    account = get_or_create_account(session, payload.account)
    if account.quarantine_reason is not None:
        raise DomainError(
            ErrorCode.worker_quarantined, f"account {account.name} is quarantined: {account.quarantine_reason}"
        )
    machines = session.execute(
        select(
            Worker.registered_from, Worker.quarantined, Worker.quarantine_reason,
            Worker.invalid_results, Worker.report_bias, Worker.result_bias,
        ).where(Worker.account_id == account.id)
    ).all()  # fmt: skip
    held = next((m.quarantine_reason for m in machines if m.quarantined), None)
    if held is not None:
        # Else a worker quarantined for its results would come back at once as a fresh key of its account.
        raise DomainError(
            ErrorCode.worker_quarantined,
            f"a machine of account {account.name} is quarantined ({held}); no new machine joins the account"
            " until a maintainer releases it",
        )
    places = [(m.registered_from, m.quarantined) for m in machines]
    if not _may_join(places, account, secret=request.account_secret, address=address, key=key):
        raise DomainError(
            ErrorCode.forbidden,
            f"account {account.name} has machines elsewhere; a machine joins it from another address with"
            f" the account's secret (`worker join URL --account {account.name} --account-secret SECRET`),"
            " which each of its machines was shown when it joined; or join as an account of your own",
        )
    worker = Worker(
        id=uuid.uuid4().hex,
        account_id=account.id,
        name=payload.name,
        public_key=payload.public_key,
        token_hash=token_hash(token),
        hardware_class=payload.hardware.hardware_class,
        hardware=payload.hardware.model_dump(mode="json"),
        registered_from=address,
        # It starts from the worst record among its account's machines: else a worker near a
        # quarantine (its strikes, or its record of reporting worse or its own results better) would
        # go on as a fresh key, and a framer would frame from a new key every few checks.
        invalid_results=max((m.invalid_results for m in machines), default=0),
        report_bias=max((m.report_bias for m in machines), default=0.0),
        result_bias=max((m.result_bias for m in machines), default=0.0),
    )
    session.add(worker)
    session.flush()
    session.refresh(worker)
    return worker, token


def authenticate(session: Session, token: str | None) -> Worker:
    if not token:
        raise DomainError(ErrorCode.unauthorized, "missing bearer token; run `worker join URL` to register")
    worker = session.scalars(select(Worker).where(Worker.token_hash == token_hash(token))).one_or_none()
    if worker is None:
        raise DomainError(ErrorCode.unauthorized, "unknown or revoked token; register again")
    return worker


def note_seen(worker: Worker, *, now: datetime) -> None:
    """Record that the worker made a request, once per SEEN_RESOLUTION; the write goes in with the
    request's own transaction (a request that changes nothing leaves it for a later one)."""
    if worker.last_seen_at is None or now - worker.last_seen_at >= SEEN_RESOLUTION:
        worker.last_seen_at = now
