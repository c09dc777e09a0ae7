"""bench/gpu_check.sh is meant for the first GPU machine lent: check here what a CPU can of it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def test_the_script_parses_and_every_bench_script_it_calls_exists() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    called = set(re.findall(r"bench/[a-z_]+\.py", SCRIPT.read_text()))
    assert called == {"bench/kernels.py", "bench/train_throughput.py", "bench/gpu_track_run.py"}
    assert all((ROOT / path).is_file() for path in called)


STEPS = ["env", "kernels", "train_throughput", "worker_run", "doctor"]


def _json_in(log: Path) -> Any:
    """The JSON report a step printed, after whatever warnings came before it on stderr."""
    text = log.read_text()
    start = text.index("\n{\n") + 1 if not text.startswith("{") else 0
    return json.JSONDecoder().raw_decode(text[start:])[0]


# Timed runs at short budgets, then the kernels' and the model's timings: alone, or another test's
# load turns a run into one the scorer refuses as too slow.
@pytest.mark.whole_machine
def test_a_dry_run_rehearses_every_step_on_the_cpu_and_saves_what_the_gpu_run_saves(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    env["PYTHON"] = sys.executable
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(f"{step}.log" for step in STEPS), "summary.txt"]
    )
    summary = (out / "summary.txt").read_text().splitlines()
    assert [re.sub(r", \d+ s$", "", line) for line in summary] == [f"{step}: exit 0" for step in STEPS], (
        "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(out.glob("*.log")))
    )
    assert "cpu (dry run)" in (out / "env.log").read_text()

    kernels = _json_in(out / "kernels.log")
    assert kernels["notes"] == [
        "Triton ran in its CPU interpreter: its times are a smoke test, not performance figures."
    ]
    triton_rows = [row for row in kernels["rows"] if row["impl"] == "triton"]
    assert len(triton_rows) == 4 and all(row["max_abs_diff"] < 1e-4 for row in triton_rows)

    throughput = _json_in(out / "train_throughput.log")
    assert [run["use_triton_kernels"] for run in throughput["runs"]] == [False, True]
    assert all(run["error"] is None for run in throughput["runs"])

    worker_run = _json_in(out / "worker_run.log")
    assert (worker_run["status"], worker_run["code"]) == ("ok", None)
    assert 0 < worker_run["metrics"]["val_bpb"] < 9
    # The baseline went through the execution package as a lease runs it: sandbox and guard.
    assert {layer["name"] for layer in worker_run["sandbox"]["layers"]} >= {"audit hook", "seccomp"}

    doctor = (out / "doctor.log").read_text()
    assert "sandbox" in doctor and "hardware" in doctor and "cpu" in doctor


def test_the_gpu_run_is_unchanged_by_the_dry_run_flag() -> None:
    # What a GPU machine runs: CUDA everywhere, the kernels compiled for real.
    text = SCRIPT.read_text()
    gpu_part = text.split('if [ "$DRY_RUN" = 1 ]; then', 1)[1].split("\nelse\n", 1)[1].split("\nfi\n", 1)[0]
    assert "TRITON_INTERPRET" not in gpu_part
    assert "bench/kernels.py --device cuda --json" in gpu_part
    assert "bench/train_throughput.py --device cuda --json" in gpu_part
    assert "bench/gpu_track_run.py --budget 60 --hardware-class h100-sxm-80gb" in gpu_part
    assert "CUDA_LAUNCH_BLOCKING=1" in gpu_part and "--vocab-size 512" in gpu_part
    assert "nvidia-smi" in gpu_part
    assert not re.search(r"\bpip\b|apt-get|conda ", text)  # nothing is installed, in either mode


def test_the_kernels_off_copy_of_the_baseline_differs_from_it_in_that_one_constant(tmp_path: Path) -> None:
    [command] = [line.strip() for line in SCRIPT.read_text().splitlines() if line.strip().startswith("sed ")]
    expression = command.split("'")[1]
    baseline = (ROOT / "baseline" / "train.py").read_text().splitlines()

    copy = subprocess.run(
        ["sed", expression, str(ROOT / "baseline" / "train.py")], capture_output=True, text=True, check=True
    ).stdout.splitlines()

    changed = [(before, after) for before, after in zip(baseline, copy, strict=True) if before != after]
    assert changed == [("USE_TRITON_KERNELS = True", "USE_TRITON_KERNELS = False")]


def test_the_throughput_bench_takes_another_vocabulary_and_refuses_a_degenerate_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import train_throughput
    finally:
        sys.path.remove(str(ROOT / "bench"))

    parsed = train_throughput._parse_args(["--device", "cpu", "--vocab-size", "512"])
    assert (parsed.preset.vocab_size, parsed.preset.seq_len) == (512, train_throughput.AUTORESEARCH.seq_len)
    with pytest.raises(SystemExit):
        train_throughput._parse_args(["--device", "cpu", "--vocab-size", "1"])
    assert "--vocab-size must be at least 2, got 1" in capsys.readouterr().err
