"""`worker`: lend this machine to an Autoresearch Network coordinator.

User errors (a wrong URL, a changed coordinator key, a home already in use) print one line and
exit non-zero; they never show a traceback. That mapping lives in `_user_errors` alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from worker.identity import DEFAULT_HOME

if TYPE_CHECKING:
    from worker.agents.base import Agent
    from worker.display import Display

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.callback()
def main() -> None:
    """Lend this machine to an Autoresearch Network: lease experiments, train them, and report
    signed results."""


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a volunteer can act on into one clear line and exit status 1."""
    from worker.agents.base import AgentError
    from worker.assets import AssetError
    from worker.client import ClientError, CoordinatorError, TransientError
    from worker.identity import IdentityError

    try:
        yield
    except IdentityError as exc:
        raise _fail(str(exc)) from None
    except CoordinatorError as exc:
        raise _fail(f"the coordinator refused: {exc.message} ({exc.code})") from None
    except TransientError as exc:
        raise _fail(f"cannot reach the coordinator: {exc}") from None
    except (ClientError, AgentError, AssetError) as exc:
        raise _fail(str(exc)) from None


def _build_agent(requested: str, *, home: Path, display: Display) -> Agent:
    """The agent asked for, or the one it falls back to (said on screen), wired to the display."""
    from worker.agents.base import make_agent

    name = requested
    if requested == "claude":
        from worker.agents.claude import choose_agent

        name, fallback = choose_agent(requested, os.environ)
        if fallback:
            display.warning(fallback)
    if name == "claude":
        # Its spend ledger lives in the worker's home; its retry notices go to the screen.
        return make_agent(name, home=home, status_callback=display.agent_status)
    return make_agent(name)


@app.command()
def join(
    url: Annotated[str, typer.Argument(help="The coordinator's address, e.g. http://127.0.0.1:8000.")],
    agent: Annotated[
        str, typer.Option(help="Who proposes changes to train.py: offline, claude or command.")
    ] = "offline",
    max_experiments: Annotated[
        int | None,
        typer.Option(min=1, help="Stop after reporting this many runs (default: run until stopped)."),
    ] = None,
    home: Annotated[
        Path, typer.Option(help="Folder for this worker's key, tokens, outbox and data.")
    ] = DEFAULT_HOME,
    name: Annotated[
        str | None, typer.Option(help="This machine's name on the leaderboard (default: host name).")
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            help="Your account; machines of one account never verify each other (default: user@host)."
        ),
    ] = None,
    track: Annotated[
        str | None, typer.Option(help="Work on this track only (default: any track of this hardware).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads for training (default: torch's choice).")
    ] = None,
    device: Annotated[
        Device, typer.Option(help="Where to train: auto picks CUDA when present.")
    ] = Device.auto,
    seed: Annotated[
        int | None,
        typer.Option(help="Mix this into the agent's random choices (default: the lease's seed alone)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Plain lines for key events only, no live display.")
    ] = False,
) -> None:
    """Join a coordinator and work until stopped: Ctrl-C once finishes the current run, twice aborts it.

    Example: worker join http://127.0.0.1:8000 --account alice --max-experiments 10
    """
    from worker.client import CoordinatorClient, TransientError
    from worker.daemon import Daemon, DaemonOptions, StopSignal
    from worker.display import make_display
    from worker.hardware import probe
    from worker.identity import WorkerHome, normalize_url

    with _user_errors():
        url = normalize_url(url)
        worker_home = WorkerHome(home)
        worker_home.lock()
        try:
            try:
                hardware = probe(device.value)
            except RuntimeError as exc:
                raise _fail(str(exc)) from None
            try:
                from worker.runner import run_harness
            except ImportError as exc:
                raise _fail(f"this installation has no training runner ({exc})") from None
            display = make_display(quiet=quiet)
            chosen_agent = _build_agent(agent, home=worker_home.root, display=display)
            stop = StopSignal()

            def on_retry(error: TransientError, delay_s: float) -> None:
                display.warning(f"{error}; retrying in {delay_s:.1f}s")

            client = CoordinatorClient(url, wait=stop.aborting.wait, on_retry=on_retry)
            options = DaemonOptions(
                coordinator_url=url,
                hardware=hardware,
                name=name,
                account=account,
                track_id=track,
                max_experiments=max_experiments,
                device=device.value,
                threads=threads,
                agent_seed=seed,
            )
            with client:
                Daemon(
                    client=client,
                    home=worker_home,
                    agent=chosen_agent,
                    run_harness=run_harness,
                    display=display,
                    options=options,
                    stop=stop,
                ).run()
        finally:
            worker_home.unlock()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
