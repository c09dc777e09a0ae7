"""The `worker` CLI: help on every command and option, and user errors as one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shared.signing import SigningKey
from worker.cli import app
from worker.identity import WorkerHome

ROOT = Path(__file__).resolve().parents[2]


def commands() -> dict[str, Any]:
    """The app's commands as the CLI library sees them (name -> command with .help and .params)."""
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def worker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI the way a volunteer does: a fresh process (with no model API key)."""
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env |= {"PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {expected}"), lines[0]


def test_join_is_a_command_and_later_commands_have_room() -> None:
    assert set(commands()) == {"join"}
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "join" in result.output


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_has_help_with_an_example(name: str) -> None:
    command = commands()[name]

    assert command.help and command.help.strip()
    assert "Example: worker " + name in command.help


@pytest.mark.parametrize(
    ("command", "parameter"),
    [(name, param.name) for name, command in sorted(commands().items()) for param in command.params],
)
def test_every_option_and_argument_has_one_line_help(command: str, parameter: str) -> None:
    param = next(p for p in commands()[command].params if p.name == parameter)

    help_text = getattr(param, "help", None)
    assert help_text and "\n" not in help_text.strip(), f"{command} {parameter} has no one-line help"


def test_join_help_lists_every_option() -> None:
    result = CliRunner().invoke(app, ["join", "--help"], terminal_width=200)

    assert result.exit_code == 0
    for option in (
        "--agent", "--max-experiments", "--home", "--name", "--account", "--track",
        "--threads", "--device", "--seed", "--quiet",
    ):  # fmt: skip
        assert option in result.output


def test_a_url_that_is_not_http_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = worker("join", "coordinator.example", "--home", str(tmp_path / "home"))

    assert_one_line_error(result, "not a coordinator URL")


def test_an_unknown_agent_is_one_line_naming_the_choices(tmp_path: Path) -> None:
    result = worker("join", "http://127.0.0.1:9", "--agent", "nope", "--home", str(tmp_path / "home"))

    assert_one_line_error(result, "unknown agent 'nope'; choose one of: ")
    assert "offline" in result.stderr


def test_a_home_already_in_use_is_one_line(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")
    home.lock()
    try:
        result = worker("join", "http://127.0.0.1:9", "--home", str(tmp_path / "home"))
    finally:
        home.unlock()

    assert_one_line_error(result, f"another worker is already running with home {home.root}")


@pytest.fixture
def impostor() -> Iterator[str]:
    """A real HTTP server answering /v1/info with a key the worker did not pin."""
    body = json.dumps(
        {"name": "x", "version": "1", "protocol": "v1", "public_key": SigningKey.generate().public_key}
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_coordinator_presenting_another_key_is_refused_loudly(tmp_path: Path, impostor: str) -> None:
    home = WorkerHome(tmp_path / "home")
    home.pin_coordinator(impostor, SigningKey.generate().public_key)

    result = worker("join", impostor, "--home", str(tmp_path / "home"), "--device", "cpu", "--quiet")

    assert_one_line_error(result, f"REFUSING {impostor}: it presents signing key")
    assert not list(home.outbox_dir.glob("*"))


def test_claude_without_an_api_key_falls_back_to_offline_and_says_so(tmp_path: Path, impostor: str) -> None:
    WorkerHome(tmp_path / "home").pin_coordinator(impostor, SigningKey.generate().public_key)

    result = worker(
        "join", impostor, "--agent", "claude", "--home", str(tmp_path / "home"), "--device", "cpu"
    )

    assert "ANTHROPIC_API_KEY is not set; using the 'offline' agent instead" in result.stdout
    assert_one_line_error(result, f"REFUSING {impostor}")
