"""What the run-time guard and the scorer split cost a run, measured side by side with the code before.

Builds the cpu-tiny track (from Python's own docs, no download; cached in .bench-cache) and runs
the same variant, interleaved, seed for seed, in three modes, each in a fresh driver process:

- `before`: the code at `--before` (git ref; default: the last commit before the split), taken
  out with `git archive` into a temporary folder: one harness process, no guard.
- `guard off`: this code, scorer and host split, the guard switched off.
- `guard on`: this code as every lease runs it: split, audit hook and seccomp.

All three run inside the same sandbox (bubblewrap when present). For each it reports the wall time
of a run, the training time, the tokens trained within the budget (what the guard could slow),
the time outside training, and for this code the evaluation's breakdown: the host's own forward
time and the rest of each round trip (shared-memory transfer, messages, the scorer's cross-entropy).

    python bench/sandbox_cost.py                          # 60 s budget, 3 runs per mode
    python bench/sandbox_cost.py --budget 10 --runs 2 --json

Figures depend on the machine and its load; run it alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu_tiny_score import DEFAULT_CACHE, cpu_tiny_spec  # noqa: E402

BEFORE_REF = "7719e78"  # the last commit with the single-process harness

BEFORE_DRIVER = """
import json, sys
from pathlib import Path
from shared.track_spec import TrackSpec
from worker.localrun import run_local
spec = TrackSpec.from_json(json.loads(Path(sys.argv[1]).read_text()))
r = run_local(source=Path(sys.argv[3]).read_text(), spec=spec, data_dir=Path(sys.argv[2]), seed=int(sys.argv[4]),
              workdir=Path(sys.argv[5]), device="cpu", threads=int(sys.argv[6]))
print(json.dumps({"ok": r.ok, "reason": r.reason, "wall": r.wall_seconds, "metrics": r.metrics, "env": r.env}))
"""

AFTER_DRIVER = """
import json, sys
from pathlib import Path
from shared.track_spec import TrackSpec
from worker.execution import Executor, RunRequest
from worker.execution.sandbox import SandboxConfig
spec = TrackSpec.from_json(json.loads(Path(sys.argv[1]).read_text()))
executor = Executor.detect(device="cpu", threads=int(sys.argv[6]), config=SandboxConfig(guard=sys.argv[7] == "on"))
r = executor.run(RunRequest(source=Path(sys.argv[3]).read_text(), spec=spec, data_dir=Path(sys.argv[2]),
                            seed=int(sys.argv[4]), workdir=Path(sys.argv[5])))
print(json.dumps({"ok": r.ok, "reason": r.reason, "wall": r.wall_seconds, "metrics": r.metrics, "env": r.env,
                  "layers": [f"{l.name}={l.state}" for l in executor.sandbox.report.layers]}))
"""

MODES = ("before", "guard off", "guard on")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (interleaved)")
    parser.add_argument("--budget", type=float, default=60.0, help="training budget per run, in seconds")
    parser.add_argument("--variant", type=Path, default=ROOT / "baseline" / "train.py", help="the train.py to run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--before", default=BEFORE_REF, help="git ref of the code to compare with")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where cpu-tiny's data is built")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser.parse_args()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def export_before(ref: str, into: Path) -> None:
    archive = into / "before.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), ref, "worker", "shared"], check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "before", filter="data")


def run_once(mode: str, *, code_root: Path, spec_path: Path, data_dir: Path, variant: Path, seed: int,
             workdir: Path, threads: int) -> dict[str, Any]:  # fmt: skip
    driver = BEFORE_DRIVER if mode == "before" else AFTER_DRIVER
    argv = [sys.executable, "-c", driver, str(spec_path), str(data_dir), str(variant), str(seed), str(workdir),
            str(threads), "on" if mode == "guard on" else "off"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, cwd=code_root, env={"PYTHONPATH": str(code_root),
                          "PATH": "/usr/local/bin:/usr/bin:/bin"}, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{mode} driver failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise RuntimeError(f"{mode} run {seed} was not valid: {result['reason']}")
    return dict(result)


def main() -> int:
    args = parse_args()
    spec, data_dir = cpu_tiny_spec(cache_dir=args.cache, budget_s=args.budget)
    rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    layers: list[str] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        export_before(args.before, scratch)
        spec_path = scratch / "spec.json"
        spec_path.write_text(spec.dumps())
        for run in range(args.runs):
            for mode in MODES:
                result = run_once(
                    mode,
                    code_root=scratch / "before" if mode == "before" else ROOT,
                    spec_path=spec_path,
                    data_dir=data_dir,
                    variant=args.variant.resolve(),
                    seed=run + 1,
                    workdir=scratch / f"run-{run}-{mode.replace(' ', '-')}",
                    threads=args.threads,
                )
                layers = result.get("layers", layers)
                rows[mode].append(result)
                print(f"run {run + 1} {mode}: {result['wall']:.2f}s wall", file=sys.stderr)
    report = build_report(rows, args=args, layers=layers)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


def build_report(rows: dict[str, list[dict[str, Any]]], *, args: argparse.Namespace, layers: list[str]) -> dict[str, Any]:
    modes: dict[str, dict[str, Any]] = {}
    for mode, results in rows.items():
        figures: dict[str, list[float]] = {
            "wall_s": [r["wall"] for r in results],
            "train_s": [r["metrics"]["train_seconds"] for r in results],
            "outside_train_s": [r["wall"] - r["metrics"]["train_seconds"] for r in results],
            "tokens": [r["metrics"]["tokens"] for r in results],
            "eval_s": [r["metrics"]["eval_seconds"] for r in results],
            "val_bpb": [r["metrics"]["val_bpb"] for r in results],
        }
        if mode != "before":
            evals = [r["env"]["eval"] for r in results]
            figures["startup_s"] = [r["env"]["startup_s"] for r in results]
            figures["forwards"] = [e["forwards"] for e in evals]
            figures["host_forward_s"] = [e["host_compute_s"] for e in evals]
            figures["transfer_and_scoring_s"] = [e["round_trips_s"] - e["host_compute_s"] for e in evals]
        modes[mode] = {name: summary(values) for name, values in figures.items()}
    before, guard_off, guard_on = (modes[m] for m in MODES)
    budget = args.budget
    return {
        "variant": str(args.variant),
        "budget_s": budget,
        "runs_per_mode": args.runs,
        "threads": args.threads,
        "before": args.before,
        "sandbox_layers": layers,
        "modes": modes,
        "cost": {
            "guard_and_split_wall_s": guard_on["wall_s"]["mean"] - before["wall_s"]["mean"],
            "guard_and_split_wall_pct_of_budget": 100 * (guard_on["wall_s"]["mean"] - before["wall_s"]["mean"]) / budget,
            "guard_wall_s": guard_on["wall_s"]["mean"] - guard_off["wall_s"]["mean"],
            "guard_tokens_pct": 100 * (guard_off["tokens"]["mean"] - guard_on["tokens"]["mean"]) / guard_off["tokens"]["mean"],
            "split_wall_s": guard_off["wall_s"]["mean"] - before["wall_s"]["mean"],
            "transfer_and_scoring_s": guard_on["transfer_and_scoring_s"]["mean"],
        },
    }  # fmt: skip


def print_table(report: dict[str, Any]) -> None:
    print(
        f"variant {report['variant']}, budget {report['budget_s']:g}s, {report['runs_per_mode']} runs per mode,"
        f" {report['threads']} thread(s), before = {report['before']}"
    )
    print("layers: " + ", ".join(report["sandbox_layers"]))
    columns = ("wall_s", "train_s", "outside_train_s", "eval_s", "tokens", "val_bpb")
    print(f"{'mode':<10}" + "".join(f"{c:>20}" for c in columns))
    for mode, stats in report["modes"].items():
        print(f"{mode:<10}" + "".join(f"{stats[c]['mean']:>12.3f} ± {stats[c]['sd']:<5.3f}" for c in columns))
    for mode in ("guard off", "guard on"):
        stats = report["modes"][mode]
        print(
            f"{mode}: startup {stats['startup_s']['mean']:.2f}s, {stats['forwards']['mean']:.0f} forwards,"
            f" host forward time {stats['host_forward_s']['mean']:.3f}s,"
            f" transfer and scoring {stats['transfer_and_scoring_s']['mean']:.3f}s"
        )
    cost = report["cost"]
    print(
        f"guard and split together: {cost['guard_and_split_wall_s']:+.2f}s per run"
        f" ({cost['guard_and_split_wall_pct_of_budget']:+.2f}% of the budget);"
        f" guard alone {cost['guard_wall_s']:+.2f}s wall, {cost['guard_tokens_pct']:+.2f}% fewer tokens trained;"
        f" split alone {cost['split_wall_s']:+.2f}s"
    )


if __name__ == "__main__":
    sys.exit(main())
