"""`worker service`: run `worker join` as a systemd service, restarted on failure, logging to the journal.

The unit runs the absolute path of this `worker` executable with the join options it was given,
plus `--home` (made absolute, so `worker status` finds the same folder) and `--quiet` (one line per
event: the journal keeps them). A system unit runs as the user who installed it (under sudo, the
one who called sudo), never as root: a worker trains other people's code. Secrets such as
ANTHROPIC_API_KEY belong in `<home>/worker.env` (mode 0600), which the unit reads if it exists,
never in the unit, which any user may read.

Arguments become ExecStart words in systemd's own syntax: safe words bare, others in double quotes
with `\\` and `"` escaped; `%` and `$` are doubled, so systemd neither expands specifiers nor
environment variables in them. `shlex.split` reads the line back to the same words, less the
doubling (a test checks both that and `systemd-analyze verify`).
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from typer.core import TyperArgument, TyperOption

from worker.compat import EXIT_OUTDATED

UNIT_NAME = "autoresearch-worker.service"
ENV_FILE = "worker.env"
_BARE = re.compile(r"^[A-Za-z0-9_@%+=:,./$-]+$")


class ServiceError(Exception):
    """The service cannot be installed or removed; the message says why in one line."""


class JoinRefused(ServiceError):
    """`worker join` would refuse these arguments; the message is its parser's."""


def systemd_quote(word: str) -> str:
    """`word` as one ExecStart word (see the module docstring)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in word):
        raise ServiceError(f"an argument holds a control character (a newline?): {word!r}")
    escaped = word.replace("%", "%%").replace("$", "$$")
    if _BARE.match(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(argv: Sequence[str]) -> str:
    return " ".join(systemd_quote(word) for word in argv)


def worker_executable() -> list[str]:
    """This installation's `worker`, by absolute path: beside the running Python (a virtualenv's
    bin/), else on PATH, else this Python running the CLI module."""
    beside = Path(sys.executable).parent / "worker"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside.absolute())]
    found = shutil.which("worker")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "worker.cli"]


def service_user() -> str:
    """Who a system unit runs as: the user behind sudo, else the current one."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def home_of(user: str) -> Path:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return Path.home()


def absolute_home(home: Path, *, user: str) -> Path:
    """`home` as the service will see it: `~` is the service user's home, relative is from here."""
    text = str(home)
    if text == "~" or text.startswith("~/"):
        return home_of(user) / text[2:]
    return home.expanduser().absolute()


@dataclass(frozen=True)
class JoinCommand:
    """`worker join`'s arguments for the unit, checked by join's own parser."""

    words: list[str]  # after `join`: the URL, the options given, --home (absolute) and --quiet
    url: str
    home: Path


def join_command(join: Any, args: Sequence[str], *, user: str) -> JoinCommand:
    """Parse `args` with `join` (the `worker join` command, as typer builds it) and write back the
    URL and the options that were given, with `--home` absolute and `--quiet` added. JoinRefused
    when join would refuse them."""
    try:
        context = join.make_context("join", list(args))
    except Exception as exc:
        format_message = getattr(exc, "format_message", None)  # a usage error; a help request has none
        if format_message is None:
            raise
        raise JoinRefused(format_message()) from exc
    home = absolute_home(Path(context.params["home"]), user=user)
    words = [str(context.params.get(p.name or "")) for p in join.params if isinstance(p, TyperArgument)]
    words += given_options(join, context, skip=("home", "quiet"))
    words += ["--home", str(home), "--quiet"]
    return JoinCommand(words=words, url=str(context.params.get("url", "")), home=home)


def given_options(command: Any, context: Any, *, skip: Collection[str] = ()) -> list[str]:
    """The options of `command` given on its command line (as parsed into `context`), written back
    as words in their long forms, except those named in `skip`."""
    words: list[str] = []
    for param in command.params:
        value = context.params.get(param.name or "")
        if not isinstance(param, TyperOption) or param.name in skip:
            continue
        source = context.get_parameter_source(param.name or "")
        if source is None or source.name != "COMMANDLINE":
            continue
        flag = max(param.opts, key=len)  # the long form
        if param.is_flag:
            if value:
                words.append(flag)
            elif param.secondary_opts:
                words.append(max(param.secondary_opts, key=len))
            continue
        words += [flag, str(value.value if isinstance(value, Enum) else value)]
    return words


@dataclass(frozen=True)
class Unit:
    path: Path
    text: str
    user_unit: bool
    home: Path


def unit_dir(*, user_unit: bool) -> Path:
    if not user_unit:
        return Path("/etc/systemd/system")
    config = os.environ.get("XDG_CONFIG_HOME")
    return (Path(config) if config else Path.home() / ".config") / "systemd" / "user"


def unit_text(*, join_argv: Sequence[str], url: str, home: Path, user_unit: bool, run_as: str | None) -> str:
    """The unit file that runs `worker join` with `join_argv` (the words after `join`)."""
    command = exec_line([*worker_executable(), "join", *join_argv])
    user_line = f"User={run_as}\n" if run_as and not user_unit else ""
    target = "default.target" if user_unit else "multi-user.target"
    return f"""# Installed by `worker service install`; `worker service uninstall{" --user" if user_unit else ""}` removes it.
[Unit]
Description=Autoresearch Network worker for {url.replace("%", "%%")}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
{user_line}ExecStart={command}
# Secrets (ANTHROPIC_API_KEY=...) go in this file, mode 0600, not here: anyone may read a unit.
EnvironmentFile=-{str(home / ENV_FILE).replace("%", "%%")}
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=30
# {EXIT_OUTDATED}: the coordinator wants a newer worker; restarting this one would not help.
RestartPreventExitStatus={EXIT_OUTDATED}
# A stop signals the worker alone: it finishes the current run, delivers the result, and exits;
# it stops its training processes itself. What is left after TimeoutStopSec is killed.
KillMode=mixed
TimeoutStopSec=15min
SyslogIdentifier=autoresearch-worker

[Install]
WantedBy={target}
"""


def _systemctl(user_unit: bool, *args: str) -> None:
    argv = ["systemctl", *(["--user"] if user_unit else []), *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"`{' '.join(argv)}` failed: {exc}") from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise ServiceError(
            f"`{' '.join(argv)}` failed: {said[0] if said else f'exit status {done.returncode}'}"
        )


def check_systemd() -> None:
    """Raise ServiceError, in one line, where this machine cannot run a systemd service."""
    if shutil.which("systemctl") is None:
        raise ServiceError(
            "systemctl is not available on this machine: run `worker join` under your own supervisor"
            " (`worker service install --print ...` shows what it would run)"
        )
    if not Path("/run/systemd/system").is_dir():
        raise ServiceError(
            "systemd is not running on this machine (a container?): run `worker join` under your own"
            " supervisor (`worker service install --print ...` shows what it would run)"
        )


def install(unit: Unit) -> None:
    """Write the unit, then enable and start it."""
    check_systemd()
    try:
        unit.path.parent.mkdir(parents=True, exist_ok=True)
        unit.path.write_text(unit.text, encoding="utf-8")
    except OSError as exc:
        hint = "; run it with sudo, or install a user service with --user" if not unit.user_unit else ""
        raise ServiceError(f"cannot write {unit.path}: {exc.strerror or exc}{hint}") from exc
    _systemctl(unit.user_unit, "daemon-reload")
    _systemctl(unit.user_unit, "enable", "--now", UNIT_NAME)


def uninstall(*, user_unit: bool) -> Path | None:
    """Stop, disable and remove the unit; the path removed, or None when none was installed."""
    path = unit_dir(user_unit=user_unit) / UNIT_NAME
    if not path.exists():
        return None
    check_systemd()
    _systemctl(user_unit, "disable", "--now", UNIT_NAME)
    try:
        path.unlink()
    except OSError as exc:
        raise ServiceError(f"cannot remove {path}: {exc.strerror or exc}; run it with sudo") from exc
    _systemctl(user_unit, "daemon-reload")
    return path


def lingering(user: str) -> bool:
    """Whether the user's services run while they are logged out (`loginctl enable-linger`)."""
    return Path("/var/lib/systemd/linger", user).exists()
