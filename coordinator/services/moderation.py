"""What maintainers do about workers: list them, quarantine them, release them.

Quarantine by hand works like the automatic one (services/verification.py): the worker gets no
more leases, and every lease request answers `worker_quarantined` with the reason. Quarantining an
account quarantines its workers and refuses new workers registering into it, so a new key does
not get around it. Releasing clears the flag, the reason and the count of invalid results (the
streak of valid ones starts again from zero). Both are idempotent.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.models import Account, Worker
from shared.protocol import ErrorCode


def list_workers(session: Session, *, quarantined_only: bool = False) -> list[Worker]:
    query = select(Worker).join(Account, Account.id == Worker.account_id).order_by(Account.name, Worker.name)
    if quarantined_only:
        query = query.where(Worker.quarantined.is_(True))
    return list(session.scalars(query))


def _targets(session: Session, *, worker_id: str | None, account: str | None) -> tuple[list[Worker], Account | None]:
    if (worker_id is None) == (account is None):
        raise DomainError(ErrorCode.bad_request, "name exactly one worker id or one account")
    if worker_id is not None:
        matches = list(session.scalars(select(Worker).where(Worker.id.startswith(worker_id))))
        if len(matches) != 1:
            raise DomainError(
                ErrorCode.not_found, f"{len(matches)} workers have an id starting with {worker_id!r}; need exactly one"
            )
        return matches, None
    found = session.scalars(select(Account).where(Account.name == account)).one_or_none()
    if found is None:
        raise DomainError(ErrorCode.not_found, f"no account {account!r}")
    return list(found.workers), found


def quarantine(session: Session, *, reason: str, worker_id: str | None = None, account: str | None = None) -> list[Worker]:
    workers, found = _targets(session, worker_id=worker_id, account=account)
    for worker in workers:
        worker.quarantined = True
        worker.quarantine_reason = reason
    if found is not None:
        found.quarantine_reason = reason
    session.flush()
    return workers


def release(session: Session, *, worker_id: str | None = None, account: str | None = None) -> list[Worker]:
    workers, found = _targets(session, worker_id=worker_id, account=account)
    for worker in workers:
        worker.quarantined = False
        worker.quarantine_reason = None
        worker.invalid_results = 0
        worker.report_bias = 0.0  # a released worker's record starts afresh
        worker.report_bias_checks = 0
        worker.result_bias = 0.0
        worker.result_bias_checks = 0
    if found is not None:
        found.quarantine_reason = None
    session.flush()
    return workers
