"""`coordinator variant ...`: a maintainer's actions on one variant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from coordinator.cli_workers import console, session_factory
from coordinator.errors import DomainError

variant_app = typer.Typer(help="Act on one variant.", no_args_is_help=True)


@variant_app.command("requeue")
def requeue(
    variant_hash: Annotated[str, typer.Argument(help="The variant's hash.")],
    track: Annotated[str | None, typer.Option(help="Its track, when the source is on several.")] = None,
) -> None:
    """Put a candidate that expired unverified back in the verifiers' queue, its wait restarted."""
    from coordinator.services import verification
    from coordinator.services.variants import get_variant

    with session_factory()() as session:
        try:
            variant = get_variant(session, variant_hash, track_id=track)
            verification.requeue(session, variant, now=datetime.now(UTC))
        except DomainError as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from None
        session.commit()
        console.print(f"{variant.hash[:12]} on {variant.track_id} is a candidate again: {variant.reason}")
