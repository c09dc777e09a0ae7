"""`coordinator`: serve the API, migrate the database, manage tracks."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from coordinator.config import Settings
from coordinator.db import make_engine, make_session_factory

app = typer.Typer(help="Run and manage an Autoresearch Network coordinator.", no_args_is_help=True)
track_app = typer.Typer(help="List and create tracks.", no_args_is_help=True)
app.add_typer(track_app, name="track")
console = Console()


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (idempotent).

    Example: ARN_DATABASE_URL=postgresql+psycopg://arn@db/arn coordinator migrate
    """
    from coordinator.migrate import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    console.print("database is at the latest schema")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply database migrations before serving.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="Log level: debug, info, warning.")] = "info",
) -> None:
    """Serve the API and the leaderboard pages.

    Example: coordinator serve --host 0.0.0.0 --port 8000
    """
    import uvicorn

    from coordinator.main import create_app
    from coordinator.migrate import upgrade

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate_first:
        upgrade(settings.resolved_database_url)
    console.print(f"leaderboard: http://{host}:{port}/", highlight=False)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


@track_app.command("list")
def track_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the tracks with their heads.

    Example: coordinator track list --json
    """
    from coordinator.services import views
    from coordinator.services.tracks import list_tracks

    settings = _settings()
    session_factory = make_session_factory(make_engine(settings.resolved_database_url))
    with session_factory() as session:
        summaries = [views.track_summary(session, track) for track in list_tracks(session)]
    if as_json:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in summaries], indent=2))
        return
    table = Table("track", "hardware", "budget", "head val_bpb", "verified", "experiments")
    for s in summaries:
        head = f"{s.head_val_bpb:.4f}" if s.head_val_bpb is not None else "calibrating"
        table.add_row(s.id, s.hardware_class, f"{s.time_budget_s:.0f} s", head, str(s.verified), str(s.variants))
    console.print(table)
