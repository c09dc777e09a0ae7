"""A volunteer's credit, as BOINC shows it: what the account's machines did and what it earned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.models import Account, Lease, Run, Variant, Worker
from shared.protocol import ErrorCode, LeaseKind, RunStatus, VariantStatus


@dataclass(frozen=True)
class Machine:
    name: str
    hardware_class: str
    hardware: dict[str, Any]
    valid_streak: int
    quarantined: bool
    last_seen: datetime | None  # the last time it reported or took work


@dataclass(frozen=True)
class Credit:
    account: Account
    experiments: int  # variants its machines proposed
    verified: list[Variant]  # of those, the promoted ones, newest first
    gain: float  # sum of the verifiers' paired gains of the promoted ones
    verify_runs: int  # verifications done for other accounts' candidates
    valid_runs: int
    best_streak: int  # the longest current run of valid results among its machines
    machines: list[Machine]


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _last_seen(session: Session, worker: Worker) -> datetime | None:
    seen = [
        worker.last_seen_at,
        session.scalar(select(func.max(Lease.created_at)).where(Lease.worker_id == worker.id)),
        session.scalar(select(func.max(Run.created_at)).where(Run.worker_id == worker.id)),
    ]
    known = [moment for moment in seen if moment is not None]
    return max(known) if known else None


def account_credit(session: Session, name: str) -> Credit:
    account = session.scalars(select(Account).where(Account.name == name)).one_or_none()
    if account is None:
        raise DomainError(ErrorCode.not_found, f"no account named {name!r}")
    worker_ids = [w.id for w in account.workers]
    authored = select(Variant).where(Variant.author_worker_id.in_(worker_ids), Variant.parent_id.is_not(None))
    verified = list(
        session.scalars(authored.where(Variant.status == VariantStatus.verified.value).order_by(Variant.id.desc()))
    )
    runs = select(Run).where(Run.worker_id.in_(worker_ids))
    machines = [
        Machine(
            name=w.name,
            hardware_class=w.hardware_class,
            hardware=w.hardware or {},
            valid_streak=w.valid_streak,
            quarantined=w.quarantined,
            last_seen=_last_seen(session, w),
        )
        for w in sorted(account.workers, key=lambda w: w.name)
    ]
    return Credit(
        account=account,
        experiments=_count(session, authored),
        verified=verified,
        gain=sum(v.verified_gain or 0.0 for v in verified),
        verify_runs=_count(session, runs.where(Run.kind == LeaseKind.verify.value)),
        valid_runs=_count(session, runs.where(Run.status == RunStatus.ok.value)),
        best_streak=max((m.valid_streak for m in machines), default=0),
        machines=machines,
    )
