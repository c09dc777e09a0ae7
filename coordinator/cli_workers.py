"""`coordinator worker ...`: list, quarantine and release workers and accounts; print an account's secret."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from coordinator.config import Settings
from coordinator.errors import DomainError
from coordinator.read_cache import invalidating_session_factory

worker_app = typer.Typer(help="List, quarantine and release workers and accounts.", no_args_is_help=True)
console = Console()

WorkerId = Annotated[str | None, typer.Argument(help="A worker id, or a unique prefix of one.")]
AccountName = Annotated[str | None, typer.Option("--account", help="Act on every worker of this account instead.")]


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    return invalidating_session_factory(settings or _settings())


@worker_app.command("list")
def worker_list(
    quarantined: Annotated[bool, typer.Option("--quarantined", help="Only quarantined workers.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List workers with their trust: valid streak, invalid results, the records of how much worse
    than others they report what others measure too and how much better than spot checks reproduce
    them they report their own discarded changes (σ, over the comparisons since each was last
    zero; past a bound, the worker is quarantined), quarantine and its reason."""
    from coordinator.services.leases import is_trusted
    from coordinator.services.moderation import list_workers

    with session_factory()() as session:
        rows = [
            {
                "id": w.id, "name": w.name, "account": w.account.name, "hardware_class": w.hardware_class,
                "valid_streak": w.valid_streak, "invalid_results": w.invalid_results, "trusted": is_trusted(w),
                "report_bias": round(w.report_bias, 2), "report_bias_checks": w.report_bias_checks,
                "result_bias": round(w.result_bias, 2), "result_bias_checks": w.result_bias_checks,
                "quarantined": w.quarantined, "reason": w.quarantine_reason,
            }
            for w in list_workers(session, quarantined_only=quarantined)
        ]  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "name", "account", "class", "streak", "invalid", "worse (n)", "own better (n)", "state")
    for row in rows:
        state = f"quarantined: {row['reason']}" if row["quarantined"] else ("trusted" if row["trusted"] else "")
        table.add_row(str(row["id"])[:12], str(row["name"]), str(row["account"]), str(row["hardware_class"]),
                      str(row["valid_streak"]), str(row["invalid_results"]),
                      f"{row['report_bias']:.1f} ({row['report_bias_checks']})" if row["report_bias_checks"] else "",
                      f"{row['result_bias']:.1f} ({row['result_bias_checks']})" if row["result_bias_checks"] else "",
                      state)  # fmt: skip
    console.print(table)


@worker_app.command("quarantine")
def worker_quarantine(
    worker_id: WorkerId = None,
    account: AccountName = None,
    reason: Annotated[str, typer.Option(help="Shown to the worker and on the API.")] = "quarantined by a maintainer",
) -> None:
    """Stop a worker (or every worker of an account, and new ones joining it) from taking leases."""
    from coordinator.services.moderation import quarantine

    with session_factory()() as session:
        try:
            workers = quarantine(session, reason=reason, worker_id=worker_id, account=account)
        except DomainError as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from exc
        session.commit()
        console.print(f"quarantined {len(workers)} worker(s): {reason}", highlight=False)


@worker_app.command("release")
def worker_release(worker_id: WorkerId = None, account: AccountName = None) -> None:
    """Lift a quarantine; the worker's count of invalid results starts again from zero."""
    from coordinator.services.moderation import release

    with session_factory()() as session:
        try:
            workers = release(session, worker_id=worker_id, account=account)
        except DomainError as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from exc
        session.commit()
        console.print(f"released {len(workers)} worker(s)", highlight=False)


@worker_app.command("secret")
def worker_secret(account: Annotated[str, typer.Argument(help="The account's name.")]) -> None:
    """Print the secret a machine shows to join ACCOUNT from an address new to it (each of the
    account's machines is told it when it registers)."""
    from coordinator.keys import load_signing_key
    from coordinator.services.workers import account_exists, account_secret

    settings = _settings()
    with session_factory(settings)() as session:
        if not account_exists(session, account):
            console.print(f"[red]error:[/red] no account {account!r}")
            raise typer.Exit(1)
    print(account_secret(load_signing_key(settings), account))
