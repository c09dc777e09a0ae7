"""`worker`: lend this machine to an Autoresearch Network coordinator.

User errors (a wrong URL, a changed coordinator key, a home already in use) print one line and
exit non-zero; they never show a traceback. That mapping lives in `_user_errors` alone.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from worker.host_limits import When
from worker.identity import DEFAULT_HOME

if TYPE_CHECKING:
    from worker.agents.base import Agent
    from worker.display import Display
    from worker.execution import Outcome
    from worker.execution.sandbox import SandboxReport

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


# Options that `join` and `run` share, so a run reads its machine the way a lease does.
ThreadsOption = Annotated[
    int | None, typer.Option(min=1, help="CPU threads for training (default: torch's choice).")
]
DeviceOption = Annotated[Device, typer.Option(help="Where to train: auto picks CUDA when present.")]
MaxCacheOption = Annotated[
    float | None,
    typer.Option(
        min=0,
        help="Keep at most this many GB of track data; the least recently used files of other tracks go first"
        " (default: no limit).",
    ),
]
MaxDownloadOption = Annotated[
    float | None,
    typer.Option(min=0.01, help="Download track data at most this fast, in megabits per second (default: no limit)."),
]


class OfflineStrategy(StrEnum):
    """The names in worker.agents.offline.STRATEGIES (a test keeps the two in step)."""

    guided = "guided"
    random = "random"


@dataclass(frozen=True)
class AgentOptions:
    """The `worker join` options that configure agents; each agent reads only its own."""

    offline_strategy: str = OfflineStrategy.guided.value
    command: str | None = None  # --agent-cmd
    command_timeout_s: float = 1800.0
    model: str | None = None  # None: the claude agent's default
    max_usd_per_day: float | None = None

    def ignored_by(self, agent: str) -> list[str]:
        """The options given on the command line that `agent` does not use, as flags."""
        given = {
            "--agent-cmd": ("command", self.command is not None),
            "--agent-timeout": ("command", self.command_timeout_s != AgentOptions.command_timeout_s),
            "--model": ("claude", self.model is not None),
            "--max-usd-per-day": ("claude", self.max_usd_per_day is not None),
            "--offline-strategy": ("offline", self.offline_strategy != AgentOptions.offline_strategy),
        }
        return [flag for flag, (owner, is_set) in given.items() if is_set and owner != agent]


@app.callback()
def main() -> None:
    """Lend this machine to an Autoresearch Network: lease experiments, train them, and report
    signed results."""


def _fail(message: str, *, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a volunteer can act on into one clear line and exit status 1 (EXIT_OUTDATED
    when the coordinator wants a newer worker)."""
    from worker.agents.base import AgentError
    from worker.assets import AssetError
    from worker.client import ClientError, CoordinatorError, TransientError
    from worker.compat import EXIT_OUTDATED, WorkerOutdated
    from worker.identity import IdentityError

    try:
        yield
    except IdentityError as exc:
        raise _fail(str(exc)) from None
    except WorkerOutdated as exc:
        raise _fail(str(exc), code=EXIT_OUTDATED) from None
    except CoordinatorError as exc:
        # An outdated worker's own exit status, so a service manager does not restart it in vain.
        code = EXIT_OUTDATED if exc.code == "worker_outdated" else 1
        raise _fail(f"the coordinator refused: {exc.message} ({exc.code})", code=code) from None
    except TransientError as exc:
        raise _fail(f"cannot reach the coordinator: {exc}") from None
    except (ClientError, AgentError, AssetError) as exc:
        raise _fail(str(exc)) from None


def _warn_if_incomplete(report: SandboxReport) -> bool:
    """Print the sandbox's warning block to stderr when a layer is missing; True if it did."""
    block = report.warning_block()
    if block is not None:
        typer.secho(block, err=True, fg=typer.colors.YELLOW, bold=True)
    return block is not None


def build_agent(requested: str, *, options: AgentOptions, home: Path, display: Display) -> Agent:
    """The agent asked for, or the one it falls back to (said on screen), built with its options."""
    from worker.agents.base import AgentError, make_agent

    name = requested
    if requested == "claude":
        from worker.agents.claude import choose_agent

        name, fallback = choose_agent(requested, os.environ)
        if fallback:
            display.warning(fallback)
    for flag in options.ignored_by(name):
        display.warning(f"{flag} does not apply to agent {name!r}; ignored")
    if name == "claude":
        # Its spend ledger lives in the worker's home; its retry notices go to the screen.
        chosen = {"model": options.model} if options.model else {}
        return make_agent(
            name,
            home=home,
            status_callback=display.agent_status,
            max_usd_per_day=options.max_usd_per_day,
            **chosen,
        )
    if name == "command":
        if not options.command:
            raise AgentError(
                "agent 'command' needs --agent-cmd, the command line that runs your coding agent once"
            )
        return make_agent(name, command=options.command, timeout_s=options.command_timeout_s)
    if name == "offline":
        return make_agent(name, strategy=options.offline_strategy)
    return make_agent(name)


@app.command()
def join(
    context: typer.Context,
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
    account_secret: Annotated[
        str | None,
        typer.Option(
            envvar="ARN_ACCOUNT_SECRET",
            help="Join an account whose machines registered from another address: the secret its"
            " machines were shown when they joined (`coordinator worker secret ACCOUNT` prints it).",
        ),
    ] = None,
    track: Annotated[
        str | None, typer.Option(help="Work on this track only (default: any track of this hardware).")
    ] = None,
    threads: ThreadsOption = None,
    device: DeviceOption = Device.auto,
    gpus: Annotated[
        str | None,
        typer.Option(
            help="all, or GPU numbers as nvidia-smi shows them, e.g. 0,2: one worker per GPU, named <name>-gpu<N>,"
            " with its home in <home>/gpu<N> (default: one worker on GPU 0, or the CPU)."
        ),
    ] = None,
    max_cache_gb: MaxCacheOption = None,
    max_download_mbps: MaxDownloadOption = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Mix this into the agent's random choices (default: the lease's seed alone)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Plain lines for key events only, no live display.")
    ] = False,
    offline_strategy: Annotated[
        OfflineStrategy,
        typer.Option(
            help="How the offline agent picks a change: guided (learns from the research log) or random."
        ),
    ] = OfflineStrategy.guided,
    agent_cmd: Annotated[
        str | None,
        typer.Option(help="For --agent command: the command line that runs your coding-agent CLI once."),
    ] = None,
    agent_timeout: Annotated[
        float,
        typer.Option(
            min=1, help="For --agent command: seconds one proposal may take before the command is killed."
        ),
    ] = AgentOptions.command_timeout_s,
    model: Annotated[
        str | None, typer.Option(help="For --agent claude: the model to ask (default: claude-sonnet-5-5).")
    ] = None,
    max_usd_per_day: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="For --agent claude: stop asking the model once its estimated spend today (UTC) reaches this.",
        ),
    ] = None,
    # Host limits: None means "not given here", so worker.toml and ARN_WORKER_* apply (worker.host_config).
    when: Annotated[
        When | None,
        typer.Option(help="always, or idle: only while no other process uses the GPU and the desktop is idle."),
    ] = None,
    idle_minutes: Annotated[
        float | None,
        typer.Option(min=0, help="With --when idle: minutes without keyboard or mouse input first (default: 10)."),
    ] = None,
    hours: Annotated[
        str | None,
        typer.Option(help="Work only in these local hours, e.g. 22-07 or 9-12,20:30-23 (default: all day)."),
    ] = None,
    max_gpu_temp: Annotated[
        float | None,
        typer.Option(min=1, help="Pause above this GPU temperature in °C; resume 5 °C below it."),
    ] = None,
    max_gpu_power: Annotated[
        float | None,
        typer.Option(min=1, help="Pause above this GPU power draw in W; resume 10% below it."),
    ] = None,
    max_cpu_load: Annotated[
        float | None,
        typer.Option(min=0.01, help="Pause while the 1-minute load average per core, less this worker's, is above this."),
    ] = None,
) -> None:
    """Join a coordinator and work until stopped: Ctrl-C once finishes the current run, twice aborts it.

    Host limits (--when, --hours, --max-gpu-temp, --max-gpu-power, --max-cpu-load) may also be set
    in worker.toml in the home or as ARN_WORKER_* variables; the command line wins. While they say
    no, no lease is asked for, and a run in progress is stopped and its lease handed back.

    Example: worker join http://127.0.0.1:8000 --account alice --max-experiments 10

    Example: worker join http://127.0.0.1:8000 --when idle --hours 22-07 --max-gpu-temp 80

    Example: worker join http://127.0.0.1:8000 --account alice --gpus all
    """
    from shared.stacks import dump_stacks_on_signal

    dump_stacks_on_signal()  # `kill -USR1` writes where each thread is to the log, and work goes on
    if gpus is not None:
        with _user_errors():
            raise typer.Exit(_join_gpus(context, url, gpus=gpus, home=home, name=name))
    from worker.stop import StopSignal

    stop = StopSignal()
    # From the first moment: a Ctrl-C or SIGTERM while the worker starts (torch's import, the
    # sandbox's self-tests) stops it as one while it works does (it joins, delivers what it holds
    # and says so) rather than in a traceback; the daemon takes the signals over once it runs.
    with _user_errors(), stop.installed(None):
        from worker.client import CoordinatorClient, TransientError
        from worker.daemon import Daemon, DaemonOptions
        from worker.display import make_display
        from worker.execution import Executor
        from worker.hardware import probe
        from worker.host_config import CONFIG_FILE, HostConfigError, load_host_settings
        from worker.identity import WorkerHome, normalize_url
        from worker.status import STATUS_FILE, StatusBoard

        url = normalize_url(url)
        worker_home = WorkerHome(home)
        worker_home.lock()
        try:
            try:
                host_settings = load_host_settings(
                    worker_home.root / CONFIG_FILE,
                    given={
                        "when": when, "idle_minutes": idle_minutes, "hours": hours, "max_gpu_temp": max_gpu_temp,
                        "max_gpu_power": max_gpu_power, "max_cpu_load": max_cpu_load,
                    },
                )  # fmt: skip
            except HostConfigError as exc:
                raise _fail(str(exc)) from None
            try:
                hardware = probe(device.value)
            except RuntimeError as exc:
                raise _fail(str(exc)) from None
            display = make_display(quiet=quiet)
            agent_options = AgentOptions(
                offline_strategy=offline_strategy.value,
                command=agent_cmd,
                command_timeout_s=agent_timeout,
                model=model,
                max_usd_per_day=max_usd_per_day,
            )
            # A mistyped option is one line, not one line under the sandbox's warning block.
            chosen_agent = build_agent(agent, options=agent_options, home=worker_home.root, display=display)
            executor = Executor.detect(device=device.value, threads=threads)
            if not _warn_if_incomplete(executor.sandbox.report):
                active = ", ".join(layer.name for layer in executor.sandbox.report.layers if layer.active)
                display.event(f"sandbox: {active} (see worker doctor)")
            host = host_settings.gate(watch_gpu=hardware.hardware_class != "cpu")
            if host is not None:
                display.event(f"host limits: {host.limits.describe()}")
            board = StatusBoard(worker_home.root / STATUS_FILE)

            def on_retry(error: TransientError, delay_s: float) -> None:
                display.warning(f"{error}; retrying in {delay_s:.1f}s")
                board.waiting(f"the coordinator did not answer: {error}", delay_s=delay_s)

            client = CoordinatorClient(url, wait=stop.aborting.wait, on_retry=on_retry)
            options = DaemonOptions(
                coordinator_url=url,
                hardware=hardware,
                name=name,
                account=account,
                account_secret=account_secret,
                track_id=track,
                max_experiments=max_experiments,
                agent_seed=seed,
                max_cache_gb=max_cache_gb,
                max_download_mbps=max_download_mbps,
            )
            with client:
                Daemon(
                    client=client,
                    home=worker_home,
                    agent=chosen_agent,
                    executor=executor,
                    display=display,
                    options=options,
                    stop=stop,
                    host=host,
                    board=board,
                ).run()
        finally:
            worker_home.unlock()


# Options a `--gpus` supervisor sets per child rather than passing on as given.
_PER_SLOT = {"url", "gpus", "home", "name"}


def _join_gpus(context: typer.Context, url: str, *, gpus: str, home: Path, name: str | None) -> int:
    """`worker join --gpus`: a child `worker join` per GPU, with the other options as given (worker.gpus)."""
    from worker.gpus import (
        GpuSelectionError,
        Slot,
        Supervisor,
        choose_slots,
        device_count,
        parse_gpus,
        prepare_slot_home,
        slot_env,
        visible_devices,
        write_slots_file,
    )
    from worker.identity import WorkerHome, normalize_url
    from worker.registration import default_name
    from worker.service import given_options

    url = normalize_url(url)
    try:
        selection = parse_gpus(gpus)
        slots = choose_slots(selection, visible_devices(os.environ, device_count()))
    except GpuSelectionError as exc:
        raise _fail(str(exc)) from None
    passed_on = given_options(context.command, context, skip=_PER_SLOT)  # the rest, as given
    worker_home = WorkerHome(home)
    worker_home.lock()
    try:
        base = name or default_name()
        argv_for: dict[Slot, list[str]] = {}
        env_for: dict[Slot, dict[str, str]] = {}
        for slot in slots:
            slot_home = prepare_slot_home(worker_home.root, slot)
            argv_for[slot] = [
                sys.executable, "-m", "worker.cli", "join", url, "--home", str(slot_home),
                "--name", f"{base[: 99 - len(slot.label)]}-{slot.label}", *passed_on,
            ]  # fmt: skip
            env_for[slot] = slot_env(slot, os.environ)
        write_slots_file(worker_home.root, slots)
        supervisor = Supervisor(slots, argv_for=argv_for, env_for=env_for)
        pinned = ", ".join(f"{slot.label} (CUDA_VISIBLE_DEVICES={slot.device})" for slot in slots)
        supervisor.say(f"one worker per GPU: {pinned}; Ctrl-C once finishes their runs, twice aborts them")
        return supervisor.run()
    finally:
        worker_home.unlock()


@app.command()
def fork(
    track: Annotated[str, typer.Argument(help="The track whose lineage to clone, e.g. cpu-tiny.")],
    coordinator: Annotated[
        str, typer.Option(help="The coordinator that serves the track, e.g. http://127.0.0.1:8000.")
    ],
    directory: Annotated[
        Path | None, typer.Argument(help="Folder to clone into; it must not exist or be empty (default: the track id).")
    ] = None,
) -> None:
    """Clone a track's verified lineage as a git repository (no git binary needed): main is the head.

    Each verified variant is a commit on its parent, tagged v/<hash>. Inside the fork, `worker run`
    and `worker submit` know the coordinator and the track.

    Example: worker fork cpu-tiny --coordinator http://127.0.0.1:8000
    """
    from worker.fork import ForkError
    from worker.fork import fork as clone_lineage
    from worker.identity import normalize_url

    target = directory if directory is not None else Path(track)
    with _user_errors():
        try:
            made = clone_lineage(normalize_url(coordinator), track, target)
        except ForkError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"forked {track} into {target}: main is {made.head[:10]} ({made.subject})")
    typer.echo("next:")
    typer.echo(f"  cd {target}")
    typer.echo("  edit train.py (program.md is the track's research brief)")
    typer.echo("  worker run train.py                           # train and score it here, as a lease would")
    typer.echo('  worker submit train.py --hypothesis "..."     # send it to the network for verification')


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="The train.py to run.")],
    coordinator: Annotated[
        str | None,
        typer.Option(
            help="The coordinator that serves the track, e.g. http://127.0.0.1:8000 (default: the fork's)."
        ),
    ] = None,
    track: Annotated[
        str | None, typer.Option(help="The track to run it on, e.g. cpu-tiny (default: the fork's).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (status, layer, code, reason, metrics).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for the initialisation and the data order.")] = 1,
    threads: ThreadsOption = None,
    device: DeviceOption = Device.auto,
    home: Annotated[
        Path, typer.Option(help="Worker folder whose data cache holds the track's files (shared with join).")
    ] = DEFAULT_HOME,
    max_cache_gb: MaxCacheOption = None,
    max_download_mbps: MaxDownloadOption = None,
) -> None:
    """Run one train.py exactly as a lease runs it: static policy, sandbox, guard, scorer and probes.

    The track's spec and data come from the coordinator (cached and hash-checked). Prints the
    metrics, or which layer refused the file and its stable code. Exit status 0 only for a valid run.
    Inside a `worker fork` folder, the coordinator and the track default to the fork's.

    Example: worker run train.py --coordinator http://127.0.0.1:8000 --track cpu-tiny --json
    """
    from datetime import datetime

    from shared.hashing import short_hash, variant_hash
    from shared.track_spec import TrackSpec
    from worker.assets import AssetStore
    from worker.client import CoordinatorClient
    from worker.display import make_display
    from worker.execution import Executor, Progress, RunRequest
    from worker.identity import KEEP_RUNS, WorkerHome, normalize_url

    with _user_errors():
        coordinator, track = _coordinator_and_track(file, coordinator, track)
        url = normalize_url(coordinator)
        try:
            source = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"cannot read {file}: {exc}") from None
        worker_home = WorkerHome(home)
        worker_home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        display = None if json_output else make_display()
        with CoordinatorClient(url) as client:
            detail = client.call(lambda: client.track(track))
            spec = TrackSpec.from_json(detail.spec)
            assets = AssetStore.with_limits(
                worker_home.assets_dir,
                max_cache_gb=max_cache_gb,
                max_download_mbps=max_download_mbps,
                watcher=display,
            )
            try:
                assets.ensure(
                    client, track_id=track, hashes=[*spec.assets.train, spec.assets.val, spec.assets.token_bytes]
                )
            except BaseException:
                if display is not None:  # a live download bar gives the terminal back before the error
                    display.close("the track's data was not fetched")
                raise
    executor = Executor.detect(device=device.value, threads=threads)
    _warn_if_incomplete(executor.sandbox.report)
    digest = variant_hash(source)
    worker_home.prune_runs(keep=KEEP_RUNS - 1)  # this run's folder makes KEEP_RUNS
    workdir = worker_home.runs_dir / f"local-{datetime.now():%Y%m%d-%H%M%S}-{short_hash(digest)}"

    started = False

    def on_progress(progress: Progress) -> None:
        nonlocal started
        if display is None:
            return
        if not started:  # said here, not before the run: the policy may refuse the file first
            display.training_started(variant_hash=digest, time_budget_s=spec.time_budget_s)
            started = True
        display.training_progress(
            step=progress.step,
            loss=progress.loss,
            elapsed_s=progress.elapsed_s,
            time_budget_s=progress.time_budget_s,
        )

    result = executor.run(
        RunRequest(source=source, spec=spec, data_dir=assets.root, seed=seed, workdir=workdir),
        on_progress=on_progress,
    )
    log = workdir / "harness.log"
    if json_output:
        summary = {k: v for k, v in result.to_json().items() if k != "log_tail"}
        summary |= {"variant_hash": digest, "track_id": track, "seed": seed}
        summary["log"] = str(log) if log.exists() else None
        typer.echo(json.dumps(summary, sort_keys=True))
    elif display is not None:
        display.close(_describe_result(result, log=log))
    raise typer.Exit(0 if result.ok else 1)


def _describe_result(result: Outcome, *, log: Path) -> str:
    log_line = f"\nlog: {log}" if log.exists() else ""
    if result.ok:
        metrics = result.metrics
        return (
            f"ok: val_bpb {metrics.get('val_bpb'):.4f} after {metrics.get('steps')} steps"
            f" ({metrics.get('train_seconds') or 0:.1f}s of training){log_line}"
        )
    stopped_by = f" by the {result.layer} layer" if result.layer else ""
    return f"{result.status}{stopped_by} ({result.code}): {result.reason}{log_line}"


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Your train.py.")],
    hypothesis: Annotated[
        str, typer.Option(help="What you changed and why it should lower val_bpb (one line, at most 500 characters).")
    ],
    parent: Annotated[
        str | None,
        typer.Option(
            help="The verified variant it builds on (a hash prefix, 7+ digits; default: what a fork has checked"
            " out, else the head)."
        ),
    ] = None,
    coordinator: Annotated[
        str | None, typer.Option(help="The coordinator (default: the one a `worker fork` folder came from).")
    ] = None,
    track: Annotated[str | None, typer.Option(help="The track (default: the fork's).")] = None,
    account: Annotated[
        str | None, typer.Option(help="Your account: workers of other accounts verify your variant (default: user@host).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the variant until it is verified or rejected.")] = False,
    home: Annotated[Path, typer.Option(help="Folder that holds your key (shared with join).")] = DEFAULT_HOME,
) -> None:
    """Send your own train.py to be verified by other volunteers' machines, under the same rule as any
    candidate. You need no GPU: your key is registered on first use.

    Example: worker submit train.py --hypothesis "warmup 10% -> 5%" --wait
    """
    from shared.protocol import VariantStatus
    from worker.identity import WorkerHome
    from worker.submission import SubmissionError, follow, read_checked
    from worker.submission import submit as submit_variant

    with _user_errors():
        try:
            source = read_checked(file)
            coordinator_url, track_id = _coordinator_and_track(file, coordinator, track)
            if parent is None and coordinator is None:
                from worker.fork import fork_parent

                parent = fork_parent(file)  # what the fork has checked out, else the head
            submitted = submit_variant(
                coordinator_url=coordinator_url, track_id=track_id, source=source, hypothesis=hypothesis,
                parent_hash=parent.lower() if parent else None, home=WorkerHome(home), account=account,
            )
        except SubmissionError as exc:
            raise _fail(str(exc)) from None
        response = submitted.response
        said = "already submitted" if response.duplicate else "submitted"
        typer.echo(f"{said} {submitted.short_hash} to {track_id} (parent {response.parent_hash[:10]}): {response.status}")
        typer.echo(f"  {response.message}")
        typer.echo(f"  follow it at {submitted.url}")
        if not wait:
            return
        detail = follow(
            coordinator_url, track_id, response.variant_hash,
            on_change=lambda d: typer.echo(f"{d.status.value}" + (f": {d.reason}" if d.reason else "")),
        )
    if detail.status != VariantStatus.verified:
        raise typer.Exit(1)


def _coordinator_and_track(file: Path, coordinator: str | None, track: str | None) -> tuple[str, str]:
    """The options given, else what the `worker fork` folder holding `file` was cloned from."""
    if coordinator is None or track is None:
        from worker.fork import fork_origin

        origin = fork_origin(file.resolve().parent)
        if origin is not None:
            coordinator = coordinator or origin.coordinator_url
            track = track or origin.track_id
    if coordinator is None or track is None:
        raise _fail(f"{file} is not in a `worker fork` folder: pass --coordinator URL and --track ID")
    return coordinator, track


@app.command()
def doctor(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the sandbox layers and the hardware.")
    ] = False,
    device: Annotated[
        Device, typer.Option(help="The device runs would use: auto picks CUDA when present.")
    ] = Device.auto,
) -> None:
    """Show which sandbox and guard layers this machine enforces on other people's code, and its hardware class.

    A layer is active, unavailable (and why), skipped where it does not apply, or off.

    Example: worker doctor --json
    """
    from worker.execution.sandbox import detect_report
    from worker.hardware import probe

    try:
        hardware = probe(device.value)
    except RuntimeError as exc:
        raise _fail(str(exc)) from None
    report = detect_report(device=device.value)
    if json_output:
        typer.echo(json.dumps({"sandbox": report.to_json(), "hardware": hardware.model_dump(mode="json")}))
        return
    typer.echo("sandbox")
    for line in report.lines():
        typer.echo(f"  {line}")
    typer.echo("hardware")
    for key, value in hardware.model_dump(mode="json").items():
        typer.echo(f"  {key:<15}{value}")
    _warn_if_incomplete(report)


NOT_RUNNING_EXIT = 3  # as `systemctl status` says of a stopped unit


@app.command()
def status(
    home: Annotated[Path, typer.Option(help="The home of the worker to ask about (as given to join).")] = DEFAULT_HOME,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: running, note, home, worker, outbox.")
    ] = False,
) -> None:
    """Show what the worker running with this home is doing: its lease, progress, pauses, today's totals.

    Reads the status the running worker publishes in its home (status.json) and counts its outbox;
    no network. Exit status 0 while a worker runs, 3 when none does (stopped, gone or not updating).

    Example: worker status --home ~/.autoresearch-worker --json
    """
    from rich.console import Console

    from worker.identity import WorkerHome
    from worker.status import read_status, render_report

    report = read_status(WorkerHome(home).root)
    if json_output:
        typer.echo(report.model_dump_json())
    else:
        Console().print(render_report(report))
    raise typer.Exit(0 if report.running else NOT_RUNNING_EXIT)


service_app = typer.Typer(
    no_args_is_help=True,
    help="Run `worker join` as a systemd service that starts at boot and restarts on failure."
    "\n\nExample: worker service install --user http://127.0.0.1:8000 --account alice",
)
app.add_typer(service_app, name="service")

UserUnitOption = Annotated[
    bool, typer.Option("--user", help="A service of your own user (systemctl --user), not a system one.")
]


@service_app.command(
    "install", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def service_install(
    context: typer.Context,
    user: UserUnitOption = False,
    print_only: Annotated[
        bool, typer.Option("--print", "--dry-run", help="Print the unit file and change nothing.")
    ] = False,
) -> None:
    """Install, enable and start a systemd unit that runs `worker join` with the same arguments.

    Give the URL and any `worker join` options after these. The unit runs this installation's
    worker by absolute path, with an absolute --home and --quiet (its lines go to the journal),
    restarts it on failure, and reads secrets such as ANTHROPIC_API_KEY from <home>/worker.env.

    Example: worker service install --user http://127.0.0.1:8000 --account alice --max-cache-gb 50
    """
    import getpass

    from worker import service

    # A user unit runs as you; a system unit as the user behind sudo, whose `~` the home is in.
    run_as = getpass.getuser() if user else service.service_user()
    join_command = typer.main.get_command(app).commands["join"]  # type: ignore[attr-defined]
    try:
        joined = service.join_command(join_command, context.args, user=run_as)
    except service.JoinRefused as exc:
        raise _fail(f"worker join would refuse these arguments: {exc}", code=2) from None
    if not user and run_as == "root":
        raise _fail(
            "the service would run other people's code as root: install it from your own account"
            " (under sudo it runs as the user who called sudo), or use --user"
        )
    try:
        unit = service.Unit(
            path=service.unit_dir(user_unit=user) / service.UNIT_NAME,
            text=service.unit_text(
                join_argv=joined.words, url=joined.url, home=joined.home, user_unit=user, run_as=run_as
            ),
            user_unit=user,
            home=joined.home,
        )
        if print_only:
            typer.echo(unit.text, nl=False)
            return
        service.install(unit)
    except service.ServiceError as exc:
        raise _fail(str(exc)) from None
    scope = "--user " if user else ""
    typer.echo(f"installed and started {unit.path}")
    typer.echo(f"  its log:    journalctl {scope}-u {service.UNIT_NAME} -f")
    typer.echo(f"  its status: worker status --home {joined.home}")
    typer.echo(f"  remove it:  worker service uninstall {scope}".rstrip())
    if user and not service.lingering(run_as):
        typer.echo(f"  to keep it running while you are logged out: loginctl enable-linger {run_as}")


@service_app.command("uninstall")
def service_uninstall(user: UserUnitOption = False) -> None:
    """Stop, disable and remove the unit `worker service install` wrote. The worker's home is kept.

    Example: worker service uninstall --user
    """
    from worker import service

    try:
        removed = service.uninstall(user_unit=user)
    except service.ServiceError as exc:
        raise _fail(str(exc)) from None
    if removed is None:
        typer.echo(f"no worker service is installed at {service.unit_dir(user_unit=user) / service.UNIT_NAME}")
    else:
        typer.echo(f"stopped, disabled and removed {removed}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
