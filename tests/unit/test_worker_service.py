"""`worker service`: a systemd unit that runs `worker join` with the options it was given."""

from __future__ import annotations

import configparser
import getpass
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from worker.cli import app
from worker.compat import EXIT_OUTDATED
from worker.service import UNIT_NAME, ServiceError, check_systemd, exec_line

RUNNER = CliRunner()


def a_regular_user() -> pwd.struct_passwd:
    """Someone a system unit can run as (systemd frowns on `nobody`): a real account where there is one."""
    regular = [user for user in pwd.getpwall() if 1000 <= user.pw_uid < 60000]
    return regular[0] if regular else pwd.getpwnam("daemon")


SERVICE_USER = a_regular_user()
URL = "http://127.0.0.1:8000"
# An agent command with quotes, spaces, a `$` and a `%`: none of it may be expanded or split.
AGENT_CMD = """mycli -p 'Read "program.md" and cut $COST by 10%'"""


def print_unit(*args: str, env: dict[str, str] | None = None) -> str:
    # A system unit runs as the user behind sudo.
    result = RUNNER.invoke(
        app, ["service", "install", "--print", *args], env={"SUDO_USER": SERVICE_USER.pw_name, **(env or {})}
    )
    assert result.exit_code == 0, result.output
    return result.output


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def exec_words(unit: str) -> list[str]:
    """ExecStart as a shell would split it, with systemd's doubled `%` and `$` undone."""
    line = parse(unit)["Service"]["ExecStart"]
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(line)]


def test_the_unit_runs_this_worker_join_with_the_options_given(tmp_path: Path) -> None:
    home = tmp_path / "my home"
    unit = print_unit(
        URL, "--account", "alice", "--agent", "command", "--agent-cmd", AGENT_CMD, "--home", str(home),
        "--max-experiments", "5", "--device", "cpu",
    )  # fmt: skip

    words = exec_words(unit)
    assert Path(words[0]).is_absolute() and Path(words[0]) == Path(sys.executable).parent / "worker"
    assert words[1:3] == ["join", URL]
    options = dict(zip(words[3:-1:2], words[4::2], strict=True))  # flag -> value; --quiet ends the line
    assert options == {
        "--account": "alice", "--agent": "command", "--agent-cmd": AGENT_CMD, "--home": str(home),
        "--max-experiments": "5", "--device": "cpu",
    }  # fmt: skip
    assert words[-1] == "--quiet"
    service = parse(unit)["Service"]
    assert (service["Restart"], service["User"], service["KillMode"]) == ("on-failure", SERVICE_USER.pw_name, "mixed")
    assert service["RestartPreventExitStatus"] == str(EXIT_OUTDATED)
    assert service["EnvironmentFile"] == f"-{home}/worker.env"
    assert parse(unit)["Install"]["WantedBy"] == "multi-user.target"


def test_the_unit_doubles_percent_and_dollar_so_systemd_expands_neither() -> None:
    line = exec_line(["/bin/worker", "a b", "x$y", "50%", 'say "hi" \\o/'])

    assert line == '/bin/worker "a b" x$$y 50%% "say \\"hi\\" \\\\o/"'


def test_a_control_character_in_an_option_is_refused() -> None:
    with pytest.raises(ServiceError, match="control character"):
        exec_line(["/bin/worker", "line one\nline two"])


def test_the_default_home_is_the_service_users_and_always_absolute() -> None:
    words = exec_words(print_unit(URL))

    assert words[-3:] == ["--home", f"{SERVICE_USER.pw_dir}/.autoresearch-worker", "--quiet"]


def test_a_user_unit_runs_as_you_and_starts_with_your_session(tmp_path: Path) -> None:
    unit = print_unit("--user", URL, "--home", str(tmp_path), "-q")

    assert "User" not in parse(unit)["Service"]
    assert parse(unit)["Install"]["WantedBy"] == "default.target"
    assert exec_words(unit).count("--quiet") == 1


def test_arguments_worker_join_would_refuse_are_one_line_and_nothing_is_printed() -> None:
    result = RUNNER.invoke(
        app, ["service", "install", "--print", URL, "--acount", "alice"], env={"SUDO_USER": SERVICE_USER.pw_name}
    )

    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: worker join would refuse these arguments: No such option: --acount")


def test_a_system_unit_never_runs_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    if getpass.getuser() != "root":
        pytest.skip("only root sees this refusal")
    monkeypatch.delenv("SUDO_USER", raising=False)

    result = RUNNER.invoke(app, ["service", "install", "--print", URL])

    assert result.exit_code == 1
    assert result.output.startswith("error: the service would run other people's code as root")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("user_unit", [False, True], ids=["system", "user"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, user_unit: bool) -> None:
    unit = print_unit(*(["--user"] if user_unit else []), URL, "--agent-cmd", AGENT_CMD, "--home", str(tmp_path))
    path = tmp_path / UNIT_NAME
    path.write_text(unit)

    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert UNIT_NAME not in done.stderr, done.stderr  # no warning about our unit


def test_install_where_systemd_does_not_run_says_so_in_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        check_systemd()
    except ServiceError as exc:
        reason = str(exc)
    else:
        pytest.skip("systemd runs here: installing would change this machine")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))

    result = RUNNER.invoke(app, ["service", "install", "--user", URL, "--home", str(tmp_path / "home")])

    assert result.exit_code == 1
    assert result.output.strip() == f"error: {reason}"
    assert not (tmp_path / "config").exists()


def test_uninstall_with_nothing_installed_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    result = RUNNER.invoke(app, ["service", "uninstall", "--user"])

    assert result.exit_code == 0
    assert result.output.strip() == f"no worker service is installed at {tmp_path}/systemd/user/{UNIT_NAME}"
