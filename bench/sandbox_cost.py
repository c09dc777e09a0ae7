"""What the sandbox and the integrity probes add to one run, in seconds.

Builds a small byte-level track from Python's own help text (tests/trackfactory.py, no download)
and runs the same variant through worker.localrun.run_local, the path every lease takes, with the
sandbox on (SandboxConfig(): every layer this machine supports) and off (SandboxConfig.off(): the
harness in its own session with a scrubbed environment only), interleaved, several times each.
The training budget is the same in both, so the difference in wall time per run is the sandbox's
cost: bubblewrap or unshare setting up namespaces and mounts, the limits launcher, the uid switch,
and the kill that waits for every process of the run to be gone. The probes' share is what the
harness measures around them (env `probe_seconds`), out of the whole evaluation (`eval_seconds`).

    python bench/sandbox_cost.py                      # baseline/train.py, 2 s budget, 5 runs each
    python bench/sandbox_cost.py --runs 8 --budget 3 --variant path/to/train.py --json

Prints mean and standard deviation of each figure per mode. Figures depend on the machine; run it
alone (the project's make targets do not run benchmarks).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.trackfactory import build_track  # noqa: E402
from worker.localrun import run_local  # noqa: E402
from worker.sandbox import Sandbox, SandboxConfig  # noqa: E402

MODES = {"sandbox on": SandboxConfig(), "sandbox off": SandboxConfig.off()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per mode (interleaved)")
    parser.add_argument("--budget", type=float, default=2.0, help="training budget per run, in seconds")
    parser.add_argument(
        "--variant", type=Path, default=ROOT / "baseline" / "train.py", help="the train.py to run"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser.parse_args()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def main() -> int:
    args = parse_args()
    source = args.variant.read_text(encoding="utf-8")
    figures: dict[str, dict[str, list[float]]] = {
        mode: {"wall_s": [], "eval_s": [], "probe_s": [], "overhead_s": []} for mode in MODES
    }
    with tempfile.TemporaryDirectory() as scratch:
        spec, data_dir = build_track(Path(scratch) / "track", time_budget_s=args.budget, grace_s=5.0)
        for run in range(args.runs):
            for mode, config in MODES.items():
                result = run_local(
                    source=source,
                    spec=spec,
                    data_dir=data_dir,
                    seed=run + 1,
                    workdir=Path(scratch) / f"run-{run}-{mode.replace(' ', '-')}",
                    device="cpu",
                    threads=args.threads,
                    sandbox=config,
                )
                if not result.ok:
                    print(f"run {run} ({mode}) was not valid: {result.code}: {result.reason}", file=sys.stderr)
                    return 1
                row = figures[mode]
                row["wall_s"].append(result.wall_seconds)
                row["eval_s"].append(float(result.metrics["eval_seconds"]))
                row["probe_s"].append(float(result.env["probe_seconds"]))
                row["overhead_s"].append(result.wall_seconds - float(result.metrics["train_seconds"]))
    report: dict[str, Any] = {
        "variant": str(args.variant.relative_to(ROOT) if args.variant.is_relative_to(ROOT) else args.variant),
        "budget_s": args.budget,
        "runs_per_mode": args.runs,
        "threads": args.threads,
        "sandbox_layers": [
            f"{layer.name}={layer.state}" for layer in Sandbox.detect(SandboxConfig(), device="cpu").report.layers
        ],
        "modes": {mode: {name: summary(values) for name, values in row.items()} for mode, row in figures.items()},
    }
    on, off = report["modes"]["sandbox on"], report["modes"]["sandbox off"]
    report["sandbox_cost_s"] = on["wall_s"]["mean"] - off["wall_s"]["mean"]
    report["probe_cost_s"] = statistics.fmean(figures["sandbox on"]["probe_s"] + figures["sandbox off"]["probe_s"])
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"variant {report['variant']}, budget {args.budget:g}s, {args.runs} runs per mode, {args.threads} thread(s)")
    print("sandbox layers: " + ", ".join(report["sandbox_layers"]))
    print(f"{'mode':<12} {'wall s':>14} {'outside train s':>16} {'eval s':>14} {'probes s':>14}")
    for mode, stats in report["modes"].items():
        cells = [f"{stats[k]['mean']:.3f} ± {stats[k]['sd']:.3f}" for k in ("wall_s", "overhead_s", "eval_s", "probe_s")]
        print(f"{mode:<12} {cells[0]:>14} {cells[1]:>16} {cells[2]:>14} {cells[3]:>14}")
    print(f"sandbox adds {report['sandbox_cost_s']:+.3f} s per run (difference of mean wall times)")
    print(f"probes take {report['probe_cost_s']:.3f} s per run (of the evaluation's time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
