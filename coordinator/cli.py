"""`coordinator`: serve the API, migrate the database, manage tracks and workers."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from coordinator.cli_variants import variant_app
from coordinator.cli_workers import worker_app
from coordinator.config import Settings
from coordinator.db import make_engine, make_session_factory
from coordinator.read_cache import invalidating_session_factory

app = typer.Typer(
    help="Run and manage an Autoresearch Network coordinator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold keys and database passwords
)
track_app = typer.Typer(help="List and create tracks.", no_args_is_help=True)
app.add_typer(track_app, name="track")
app.add_typer(worker_app, name="worker")
app.add_typer(variant_app, name="variant")
console = Console()

KEEP_ALIVE_S = 75  # an idle client connection is kept this long
GRACEFUL_SHUTDOWN_S = 5  # requests in flight get this long to finish on SIGTERM


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def migrate(
    tracks: Annotated[
        bool, typer.Option("--tracks/--no-tracks", help="Also create the built-in tracks, once, before replicas start.")
    ] = False,
) -> None:
    """Bring the database schema up to date (idempotent).

    Example: ARN_DATABASE_URL=postgresql+psycopg://arn@db/arn coordinator migrate --tracks
    """
    from coordinator.migrate import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    console.print("database is at the latest schema")
    if tracks:
        from coordinator.main import prepare

        prepare(settings)  # replicas started after this find the tracks and never race to create them
        console.print("built-in tracks are ready")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply database migrations before serving.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="Log level: debug, info, warning.")] = "info",
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Processes serving the port (more than one needs ARN_REDIS_URL).")
    ] = 1,
) -> None:
    """Serve the API and the leaderboard pages.

    Example: coordinator serve --host 0.0.0.0 --port 8000 --workers 2
    """
    import uvicorn

    from coordinator.main import create_app, prepare
    from coordinator.migrate import upgrade

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    if workers > 1 and settings.redis_url is None:
        console.print(
            "[red]error:[/red] several processes share rate limits and live events through Redis; "
            "set ARN_REDIS_URL, or serve with --workers 1"
        )
        raise typer.Exit(2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate_first:
        upgrade(settings.resolved_database_url)
    console.print(f"leaderboard: http://{host}:{port}/", highlight=False)
    # Keep-alive outlasts every wait the coordinator asks of a client (no work: retry in 5 s), so a
    # client's next request never races the server closing its idle connection. Shutdown waits a
    # few seconds for requests in flight, then closes streams and connections.
    options: dict[str, Any] = {
        "host": host, "port": port, "log_level": log_level,
        "timeout_keep_alive": KEEP_ALIVE_S, "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips,
    }  # fmt: skip
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    prepare(settings)  # built-in tracks are created once, here, not raced by every process
    # Each process builds its app from the same environment.
    uvicorn.run("coordinator.main:create_app", factory=True, workers=workers, **options)


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


def _parse_file(spec: str) -> tuple[str, str]:
    path, sep, sha = spec.rpartition(":")
    if not sep or len(sha) != 64:
        raise typer.BadParameter(f"{spec!r}: expected PATH:SHA256 (64 hex digits)")
    return path, sha.lower()


@track_app.command("create")
def track_create(
    track_id: Annotated[str, typer.Argument(help="Track id, e.g. h100-5min.")],
    hf_repo: Annotated[str, typer.Option(help="Hugging Face dataset repo, e.g. HuggingFaceFW/fineweb-edu.")],
    revision: Annotated[str, typer.Option(help="The dataset's full 40-character commit id (pins the data).")],
    file: Annotated[list[str], typer.Option(help="PATH:SHA256 of one parquet file in the repo; repeat for more.")],
    hardware_class: Annotated[str, typer.Option(help="Hardware class the track is pinned to.")] = "h100-sxm-80gb",
    name: Annotated[str | None, typer.Option(help="Human-readable name (default: the id).")] = None,
    text_column: Annotated[str, typer.Option(help="Parquet column holding the text.")] = "text",
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 8192,
    seq_len: Annotated[int, typer.Option(help="Sequence length.")] = 2048,
    eval_tokens: Annotated[int, typer.Option(help="Validation tokens the harness scores.")] = 20 * 524_288,
    eval_batch_size: Annotated[int, typer.Option(help="Sequences per evaluation batch.")] = 32,
    budget_s: Annotated[float, typer.Option(help="Training time budget in seconds.")] = 300.0,
    grace_s: Annotated[float, typer.Option(help="Seconds past the budget before a run is killed.")] = 30.0,
    quorum: Annotated[int, typer.Option(help="Distinct accounts whose verify runs a decision needs.")] = 2,
    tolerance: Annotated[
        float, typer.Option(help="Least shortfall (bpb) of the verified gain below a claim that refutes it.")
    ] = 0.01,
    calibration_runs: Annotated[int, typer.Option(help="Runs of each new head that set its shown value.")] = 3,
    noise_sigma: Annotated[
        float | None,
        typer.Option(help="σ of one paired difference (bpb), measured on this hardware; default tolerance/4."),
    ] = None,
    claim_margin: Annotated[float, typer.Option(help="Claimed gain, in σ, that makes a candidate.")] = 1.0,
    max_verifications: Annotated[int, typer.Option(help="Paired verify runs before an undecided candidate is rejected.")] = 16,
    verify_timeout_s: Annotated[float, typer.Option(help="Seconds a candidate may wait before it expires as unverified.")] = 86_400.0,
    val_fraction: Annotated[float, typer.Option(help="Share of documents held out for validation.")] = 0.01,
    holdout_fraction: Annotated[
        float, typer.Option(help="Share of documents kept back as the held-out pool verify runs are scored on.")
    ] = 0.01,
    shard_tokens: Annotated[int, typer.Option(help="Tokens per training shard.")] = 50_000_000,
    max_docs: Annotated[int | None, typer.Option(help="Use at most this many documents.")] = None,
    base_url: Annotated[str, typer.Option(help="Dataset host (a mirror serving the same paths).")] = "https://huggingface.co",
) -> None:
    """Build a GPU track from a pinned dataset revision: download, check, tokenize, register.

    Example: coordinator track create h100-5min --hf-repo karpathy/climbmix --revision 0123...cdef
    --file data/shard_000.parquet:9f86...0f00
    """
    from coordinator.keys import load_signing_key
    from coordinator.services.tracks import TrackParams, create_track
    from coordinator.trackdata import (
        ParquetFile,
        ParquetSource,
        TrackDataError,
        build_gpu_track_assets,
        fetch_parquet,
    )

    settings = _settings()
    files = [ParquetFile(path=path, sha256=sha) for path, sha in map(_parse_file, file)]
    source = ParquetSource(repo=hf_repo, revision=revision, files=files, text_column=text_column)
    session_factory = invalidating_session_factory(settings)
    with session_factory() as session:
        from coordinator.models import Track

        if session.get(Track, track_id) is not None:
            console.print(f"[red]error:[/red] track {track_id!r} already exists")
            raise typer.Exit(1)
    try:
        with console.status(f"downloading {len(files)} parquet file(s) from {hf_repo}@{revision[:12]}"):
            paths = fetch_parquet(source, settings.data_dir / "downloads", base_url=base_url)
        with console.status("training the tokenizer and writing token shards"):
            built = build_gpu_track_assets(
                parquet_paths=paths, out_dir=settings.assets_dir, text_column=text_column, vocab_size=vocab_size,
                val_fraction=val_fraction, shard_tokens=shard_tokens, min_val_tokens=eval_tokens + 1,
                holdout_fraction=holdout_fraction, min_holdout_tokens=seq_len + 1, max_docs=max_docs,
            )
    except TrackDataError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    params = TrackParams(
        id=track_id, name=name or track_id, hardware_class=hardware_class, vocab_size=built.vocab_size,
        seq_len=seq_len, eval_tokens=eval_tokens, eval_batch_size=eval_batch_size, time_budget_s=budget_s,
        grace_s=grace_s, quorum=quorum, tolerance=tolerance, calibration_runs=calibration_runs,
        noise_sigma=noise_sigma, claim_margin=claim_margin, max_verifications=max_verifications,
        verify_timeout_s=verify_timeout_s,
    )
    with session_factory() as session:
        create_track(
            session, params, assets=built.to_track_assets(), key=load_signing_key(settings),
            holdout_sha256=built.holdout,
        )
        session.commit()
    console.print(
        f"created track {track_id}: {built.train_tokens:,} train tokens in {len(built.train)} shard(s),"
        f" {built.val_tokens:,} val tokens, a held-out pool of {built.holdout_tokens:,} tokens,"
        f" vocab {built.vocab_size}",
        highlight=False,
    )
