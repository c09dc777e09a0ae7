"""The `worker` CLI: help on every command and option, and user errors as one clear line."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shared.signing import SigningKey
from worker.cli import AgentOptions, OfflineStrategy, app, build_agent
from worker.display import PlainDisplay
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


def _without_sandbox_warning(stderr: str) -> str:
    """stderr less the block `worker join` prints on a machine that lacks a sandbox layer
    (bubblewrap, say): that block is there on purpose and is tested on its own."""
    return re.sub(r"^!{78}\n.*?^!{78}\n", "", stderr, flags=re.MULTILINE | re.DOTALL)


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = _without_sandbox_warning(result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {expected}"), lines[0]


def test_join_is_a_command_and_later_commands_have_room() -> None:
    assert "join" in commands()
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
        "--threads", "--device", "--seed", "--quiet", "--offline-strategy", "--agent-cmd",
        "--agent-timeout", "--model", "--max-usd-per-day",
    ):  # fmt: skip
        assert option in result.output


def test_the_offline_strategy_choices_are_the_offline_agents_strategies() -> None:
    from worker.agents.offline import STRATEGIES

    assert {choice.value for choice in OfflineStrategy} == set(STRATEGIES)
    assert AgentOptions().offline_strategy == "guided"


def test_the_model_option_names_the_claude_agents_default_model() -> None:
    from worker.agents.claude import DEFAULT_MODEL

    [model] = [p for p in commands()["join"].params if p.name == "model"]

    assert f"(default: {DEFAULT_MODEL})" in model.help


def test_each_agent_is_built_with_its_own_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.agents.claude import ClaudeAgent
    from worker.agents.command import CommandAgent
    from worker.agents.guided import GuidedStrategy
    from worker.agents.offline import OfflineAgent, RandomStrategy

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-used")
    options = AgentOptions(
        offline_strategy="random",
        command="mycli --yes -p 'improve train.py'",
        command_timeout_s=90.0,
        model="claude-opus-5-5",
        max_usd_per_day=2.5,
    )
    display = PlainDisplay(io.StringIO())

    offline = build_agent("offline", options=options, home=tmp_path, display=display)
    guided = build_agent("offline", options=AgentOptions(), home=tmp_path, display=display)
    command = build_agent("command", options=options, home=tmp_path, display=display)
    claude = build_agent("claude", options=options, home=tmp_path, display=display)

    assert isinstance(offline, OfflineAgent) and isinstance(offline.strategy, RandomStrategy)
    assert isinstance(guided, OfflineAgent) and isinstance(guided.strategy, GuidedStrategy)
    assert isinstance(command, CommandAgent)
    assert (command.argv, command.timeout_s) == (["mycli", "--yes", "-p", "improve train.py"], 90.0)
    assert isinstance(claude, ClaudeAgent)
    assert (claude.model, claude.max_usd_per_day) == ("claude-opus-5-5", 2.5)


def test_options_of_another_agent_are_named_as_ignored(tmp_path: Path) -> None:
    output = io.StringIO()
    options = AgentOptions(command="mycli", model="claude-opus-5-5", offline_strategy="random")

    build_agent("offline", options=options, home=tmp_path, display=PlainDisplay(output))

    warnings = [line.split(" ", 2)[2] for line in output.getvalue().splitlines()]
    assert [w for w in warnings if "ignored" in w] == [
        "WARNING --agent-cmd does not apply to agent 'offline'; ignored",
        "WARNING --model does not apply to agent 'offline'; ignored",
    ]


def test_the_command_agent_without_a_command_is_one_line(tmp_path: Path) -> None:
    result = worker("join", "http://127.0.0.1:9", "--agent", "command", "--home", str(tmp_path / "home"))

    assert_one_line_error(
        result, "agent 'command' needs --agent-cmd, the command line that runs your coding agent"
    )


def test_an_unknown_offline_strategy_is_refused_naming_the_choices(tmp_path: Path) -> None:
    result = worker(
        "join", "http://127.0.0.1:9", "--offline-strategy", "clever", "--home", str(tmp_path / "h")
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "'clever' is not one of 'guided', 'random'" in " ".join(result.stderr.split())


def test_run_and_doctor_are_commands_with_every_option_in_their_help() -> None:
    assert {"run", "doctor"} <= set(commands())
    run_help = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    doctor_help = CliRunner().invoke(app, ["doctor", "--help"], terminal_width=200)

    assert (run_help.exit_code, doctor_help.exit_code) == (0, 0)
    for option in ("--coordinator", "--track", "--json", "--seed", "--threads", "--device", "--home"):
        assert option in run_help.output
    for option in ("--json", "--device"):
        assert option in doctor_help.output


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


# --- worker doctor ------------------------------------------------------------------------------

LAYERS = [
    "network",
    "filesystem",
    "environment",
    "process group",
    "privileges",
    "memory",
    "processes",
    "files",
    "audit hook",
    "seccomp",
]


def test_doctor_json_reports_every_sandbox_layer_and_the_hardware() -> None:
    result = worker("doctor", "--json", "--device", "cpu")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [layer["name"] for layer in report["sandbox"]["layers"]] == LAYERS
    for layer in report["sandbox"]["layers"]:
        assert layer["state"] in ("active", "unavailable", "skipped", "off")
        assert layer["detail"]
    assert report["hardware"]["hardware_class"] == "cpu"


def test_doctor_prints_one_line_per_layer_and_warns_about_missing_ones() -> None:
    result = worker("doctor", "--device", "cpu")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "sandbox"
    for name, line in zip(LAYERS, lines[1:], strict=False):
        assert line.startswith(f"  {name} ")
    missing = [line.split()[0] for line in lines[1 : 1 + len(LAYERS)] if "unavailable" in line]
    assert ("INCOMPLETE" in result.stderr) == bool(missing)


# --- worker run ---------------------------------------------------------------------------------

POLICY_VIOLATION = """
import subprocess


def train(ctx):
    subprocess.run(["id"])
"""


def test_run_on_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = worker(
        "run", str(tmp_path / "nope.py"), "--coordinator", "http://127.0.0.1:9", "--track", "cpu-tiny",
        "--home", str(tmp_path / "home"),
    )  # fmt: skip

    assert_one_line_error(result, f"cannot read {tmp_path / 'nope.py'}: [Errno 2] No such file or directory")


def test_run_needs_a_coordinator_url(tmp_path: Path) -> None:
    result = worker("run", str(ROOT / "baseline" / "train.py"), "--coordinator", "nowhere", "--track", "x")

    assert_one_line_error(result, "not a coordinator URL")


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `coordinator serve` with the cpu-tiny track on a 3-second budget."""
    from tests.e2e.network import Network

    network = Network(tmp_path_factory.mktemp("network"))
    try:
        network.start_coordinator(ARN_CPU_TINY_BUDGET_S="3")
        yield network.url
    finally:
        network.stop_all()


def run_json(
    train_py: Path, coordinator: str, home: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = worker(
        "run", str(train_py), "--coordinator", coordinator, "--track", "cpu-tiny", "--home", str(home),
        "--device", "cpu", "--threads", "1", "--json", *extra,
    )  # fmt: skip
    return result, json.loads(result.stdout)


@pytest.mark.slow
def test_run_trains_the_baseline_through_the_sandbox_and_exits_0(tmp_path: Path, coordinator: str) -> None:
    result, summary = run_json(ROOT / "baseline" / "train.py", coordinator, tmp_path / "home", "--seed", "3")

    assert result.returncode == 0, summary
    assert (summary["status"], summary["layer"], summary["code"], summary["reason"]) == (
        "ok",
        None,
        None,
        None,
    )
    assert 0 < summary["metrics"]["val_bpb"] < 8
    assert summary["metrics"]["steps"] > 0
    assert (summary["track_id"], summary["seed"]) == ("cpu-tiny", 3)
    # The track's data was fetched into the home's cache, checked against its address.
    assert len(list((tmp_path / "home" / "assets").iterdir())) >= 3
    assert Path(summary["log"]).is_file()


@pytest.mark.slow
def test_run_refuses_a_policy_violation_with_its_code_and_exits_1(tmp_path: Path, coordinator: str) -> None:
    train_py = tmp_path / "train.py"
    train_py.write_text(POLICY_VIOLATION)

    result, summary = run_json(train_py, coordinator, tmp_path / "home")

    assert result.returncode == 1
    assert (summary["status"], summary["layer"], summary["code"]) == (
        "rejected",
        "policy",
        "import_not_allowed",
    )
    assert summary["reason"].startswith(
        "the static policy refused train.py: line 2: import_not_allowed: `subprocess` is not on the import allowlist"
    )
    assert summary["metrics"] == {}


@pytest.mark.slow
def test_run_prints_a_refusal_as_one_readable_line_without_json(tmp_path: Path, coordinator: str) -> None:
    train_py = tmp_path / "train.py"
    train_py.write_text(POLICY_VIOLATION)

    result = worker(
        "run", str(train_py), "--coordinator", coordinator, "--track", "cpu-tiny", "--home", str(tmp_path / "home"),
    )  # fmt: skip

    assert result.returncode == 1
    assert "training" not in result.stdout
    assert result.stdout.strip().endswith(
        "rejected by the policy layer (import_not_allowed): the static policy refused train.py: line 2:"
        " import_not_allowed: `subprocess` is not on the import allowlist (abc, collections, contextlib, copy,"
        " dataclasses, enum, functools, itertools, math, numbers, numpy, operator, random, statistics, time,"
        " torch, triton, typing, warnings, shared.kernels)"
    )


@pytest.mark.slow
def test_run_on_an_unknown_track_is_one_line(tmp_path: Path, coordinator: str) -> None:
    result = worker(
        "run", str(ROOT / "baseline" / "train.py"), "--coordinator", coordinator, "--track", "nope",
        "--home", str(tmp_path / "home"),
    )  # fmt: skip

    assert_one_line_error(result, "the coordinator refused: no track named 'nope' (unknown_track)")
