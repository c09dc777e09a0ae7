"""Where the host limits come from: worker.toml in the home < ARN_WORKER_* < the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.signing import SigningKey
from worker.host_config import HostConfigError, load_host_settings
from worker.host_limits import HostLimits, When, parse_hours
from worker.identity import WorkerHome

ROOT = Path(__file__).resolve().parents[2]
NO_OPTIONS: dict[str, object] = {}


@pytest.fixture(autouse=True)
def no_worker_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ARN_WORKER_"):
            monkeypatch.delenv(name)


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "worker.toml"
    path.write_text(text)
    return path


def test_the_command_line_beats_the_environment_which_beats_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        tmp_path,
        'when = "idle"\nidle_minutes = 20\nhours = "22-07"\nmax_gpu_temp = 80\nmax_gpu_power = 250\n'
        'ignore_gpu_processes = ["firefox"]\n',
    )
    monkeypatch.setenv("ARN_WORKER_MAX_GPU_TEMP", "75")
    monkeypatch.setenv("ARN_WORKER_HOURS", "23-06")
    monkeypatch.setenv("ARN_WORKER_MAX_CPU_LOAD", "")  # empty: unset

    settings = load_host_settings(path, given={"hours": "21-08", "max_cpu_load": None, "when": None})

    assert settings.limits() == HostLimits(
        when=When.idle,  # the file
        idle_minutes=20,  # the file
        hours=parse_hours("21-08"),  # the command line, over the environment and the file
        max_gpu_temp_c=75,  # the environment, over the file
        max_gpu_power_w=250,  # the file
        max_cpu_load=None,  # nowhere
    )
    assert settings.ignore_gpu_processes == ("firefox",)


def test_without_a_config_file_or_variables_there_are_no_limits(tmp_path: Path) -> None:
    settings = load_host_settings(tmp_path / "worker.toml", given=NO_OPTIONS)

    assert settings.limits() == HostLimits()
    assert settings.gate(watch_gpu=True) is None


@pytest.mark.parametrize(
    ("config", "variables", "given", "message"),
    [
        ("max_gpu_tmp = 80\n", {}, {}, "{file}: unknown setting 'max_gpu_tmp' (known: when, idle_minutes,"),
        ('hours = "22"\n', {}, {}, "hours in {file}: hours '22' is not a window like 22-07 or 09:30-17"),
        ("", {"ARN_WORKER_WHEN": "sometimes"}, {}, "ARN_WORKER_WHEN: Input should be 'always' or 'idle'"),
        ("max_gpu_temp = 80\n", {}, {"max_gpu_temp": -1.0}, "--max-gpu-temp: Input should be greater than 0"),
        ("when = \n", {}, {}, "cannot read {file}: Invalid value"),
    ],
)
def test_a_bad_setting_is_named_by_where_it_came_from(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    variables: dict[str, str],
    given: dict[str, object],
    message: str,
) -> None:
    path = write_config(tmp_path, config)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(HostConfigError) as caught:
        load_host_settings(path, given=given)

    assert str(caught.value).startswith(message.format(file=path))


# --- through `worker join` --------------------------------------------------------------------------


def join(home: Path, url: str, *options: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARN_WORKER_") and k != "ANTHROPIC_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", "join", url, "--home", str(home), "--device", "cpu", "--quiet", *options],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=clean | {"PYTHONPATH": str(ROOT), "COLUMNS": "200"} | env,
    )


def test_join_layers_the_config_file_the_environment_and_its_options(tmp_path: Path, impostor: str) -> None:
    home = tmp_path / "home"
    write_config(home, 'hours = "22-07"\nmax_gpu_temp = 80\nmax_cpu_load = 0.5\n')
    WorkerHome(home).pin_coordinator(impostor, SigningKey.generate().public_key)

    result = join(home, impostor, "--max-cpu-load", "1.5", env={"ARN_WORKER_HOURS": "23-06"})

    assert (
        "host limits: hours 23-06; GPU up to 80 °C (resumes below 75 °C); CPU load up to 1.5 per core"
        in result.stdout
    ), result.stdout + result.stderr
    assert result.returncode == 1  # the impostor's key is refused before any lease


def test_join_with_a_bad_config_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_config(home, "max_gpu_temp = 'hot'\n")

    result = join(home, "http://127.0.0.1:9", env={})

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: max_gpu_temp in {home / 'worker.toml'}: Input should be a valid number, unable to parse string as a number"
    )
