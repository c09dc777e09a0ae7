"""`worker run`, `worker doctor` and `worker join`'s sandbox warning, through the real CLI (a fresh
process) against a real `coordinator serve`.

A machine without bubblewrap and unshare is simulated with a PATH that holds neither: the sandbox
looks its tools up on PATH, so every layer that needs them is then unavailable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ROOT / "tests" / "redteam" / "variants"


def variant(name: str) -> str:
    return (VARIANTS / f"{name}.py").read_text(encoding="utf-8")


def worker(*args: str, path: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env |= {"PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


@pytest.fixture(scope="module")
def coordinator() -> Iterator[str]:
    """A real `coordinator serve` with the cpu-tiny track on a 3-second budget."""
    import tempfile

    from tests.e2e.network import Network

    with tempfile.TemporaryDirectory() as root:
        network = Network(Path(root))
        try:
            network.start_coordinator(ARN_CPU_TINY_BUDGET_S="3")
            yield network.url
        finally:
            network.stop_all()


def run_json(train_py: Path, coordinator: str, home: Path) -> tuple[int, dict[str, Any]]:
    result = worker(
        "run", str(train_py), "--coordinator", coordinator, "--track", "cpu-tiny", "--home", str(home),
        "--device", "cpu", "--threads", "1", "--json",
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr  # one object, nothing else on stdout
    return result.returncode, json.loads(lines[0])


@pytest.mark.slow
def test_run_exits_0_for_a_valid_run_with_the_harness_metric(tmp_path: Path, coordinator: str) -> None:
    train_py = tmp_path / "train.py"
    train_py.write_text(variant("fake_metric_line"))

    code, summary = run_json(train_py, coordinator, tmp_path / "home")

    assert code == 0, summary
    assert (summary["status"], summary["layer"], summary["code"], summary["reason"]) == ("ok", None, None, None)
    # cpu-tiny's tokens are not all one byte, so not exactly 8; never the printed 0.1.
    assert summary["metrics"]["val_bpb"] > 1.0
    assert summary["metrics"]["eval_seconds"] > 0


@pytest.mark.slow
def test_run_exits_1_for_a_probe_refusal_and_reports_no_score(tmp_path: Path, coordinator: str) -> None:
    train_py = tmp_path / "train.py"
    train_py.write_text(variant("adapt_buffer"))

    code, summary = run_json(train_py, coordinator, tmp_path / "home")

    assert code == 1
    assert (summary["status"], summary["layer"], summary["code"]) == ("rejected", "probe", "checksum")
    assert summary["reason"] == "probe checksum: buffer counts changed during evaluation"
    assert "val_bpb" not in summary["metrics"]
    assert summary["metrics"]["steps"] == 0


@pytest.mark.slow
def test_run_exits_1_when_the_budget_kills_the_run(tmp_path: Path, coordinator: str) -> None:
    train_py = tmp_path / "train.py"
    train_py.write_text(variant("infinite_loop"))

    code, summary = run_json(train_py, coordinator, tmp_path / "home")

    assert code == 1
    assert (summary["status"], summary["layer"], summary["code"]) == ("crashed", "budget", "budget_exceeded")
    assert summary["metrics"] == {"steps": None, "tokens": None}  # killed before train() returned


def test_doctor_names_the_layers_a_machine_without_bubblewrap_lacks(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()

    result = worker("doctor", "--device", "cpu", path=str(tmp_path / "bin"))

    assert result.returncode == 0, result.stderr
    layers = {line.split()[0]: line for line in result.stdout.splitlines()[1:11]}
    assert "unavailable" in layers["network"]
    assert "bubblewrap is not installed" in layers["network"]
    assert "unshare is not installed" in layers["network"]
    assert "unavailable" in layers["filesystem"]
    assert "WARNING: the sandbox for other people's code is INCOMPLETE on this machine." in result.stderr
    assert "  network: the variant can reach the network" in result.stderr


def test_doctor_json_says_which_layers_are_active_here() -> None:
    result = worker("doctor", "--json", "--device", "cpu")

    assert result.returncode == 0, result.stderr
    layers = {layer["name"]: layer for layer in json.loads(result.stdout)["sandbox"]["layers"]}
    assert layers["environment"]["state"] == "active"
    assert layers["files"]["state"] == "active"
    if Path("/usr/bin/bwrap").exists():  # this project's CI installs it
        assert layers["network"]["detail"].startswith("bubblewrap: a network namespace")
        assert layers["filesystem"]["state"] == "active"


@pytest.mark.slow
def test_join_warns_loudly_when_a_layer_is_missing_and_runs_with_the_rest(tmp_path: Path, coordinator: str) -> None:
    (tmp_path / "bin").mkdir()

    result = worker(
        "join", coordinator, "--account", "alice", "--home", str(tmp_path / "home"), "--device", "cpu",
        "--threads", "1", "--max-experiments", "1", "--agent", "offline",
        path=str(tmp_path / "bin"),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    warning = result.stderr.index("WARNING: the sandbox for other people's code is INCOMPLETE on this machine.")
    assert "  network: the variant can reach the network" in result.stderr[warning:]
    assert "  filesystem: bubblewrap is not installed" in result.stderr[warning:]
    # It went on with the other layers and did its work.
    assert "1 leases, 1 runs (1 ok" in result.stdout, result.stdout
