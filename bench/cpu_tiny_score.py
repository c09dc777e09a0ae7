"""Score train.py files on the real cpu-tiny track: val_bpb per seed, and mean ± std per file.

Builds the built-in track's data (coordinator.trackdata.build_cpu_tiny, about 5 s; files already in
the cache are not rewritten) and runs each file through the worker's executor (worker.execution:
the static policy, the sandbox, the guard, the scorer and its probes) on the CPU, exactly as a
volunteer's worker would, once per seed.

    git show 4b34b1b:baseline/train.py > /tmp/plain_train.py
    python bench/cpu_tiny_score.py --budget 60 --seeds 1 2 3 \\
        --train-py baseline/train.py --train-py /tmp/plain_train.py --untrained

Runs are interleaved (every file for seed 1, then every file for seed 2...), so that load from other
processes on a shared machine falls on all files alike rather than on whichever ran last.
`--untrained` adds a variant whose train() returns baseline/train.py's build_model(ctx) untouched:
the score of a model that learnt nothing. The std is the sample standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from coordinator.services.tracks import cpu_tiny_params  # noqa: E402
from coordinator.trackdata import build_cpu_tiny  # noqa: E402
from shared.track_spec import TrackSpec  # noqa: E402
from worker.execution import Executor, Outcome, RunRequest  # noqa: E402

DEFAULT_CACHE = REPO_ROOT / ".bench-cache"
UNTRAINED_NAME = "untrained"
# A variant is one file (the policy and the sandbox see to it): the baseline, with a train() at its
# end that builds the model and returns it untouched.
UNTRAINED_SOURCE = (
    (REPO_ROOT / "baseline" / "train.py").read_text(encoding="utf-8")
    + "\n\ndef train(ctx):\n    return build_model(ctx)\n"
)


@dataclass
class Scores:
    """One file's results, one entry per seed that ran."""

    name: str
    path: Path
    val_bpb: dict[int, float] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)

    def mean(self) -> float | None:
        return statistics.fmean(self.val_bpb.values()) if self.val_bpb else None

    def std(self) -> float | None:
        return statistics.stdev(self.val_bpb.values()) if len(self.val_bpb) > 1 else None


def cpu_tiny_spec(*, cache_dir: Path, budget_s: float) -> tuple[TrackSpec, Path]:
    """The cpu-tiny track's spec at `budget_s`, with its data built into `cache_dir`."""
    # Quorum, calibration and tolerance steer verification only; none of them is in the spec.
    params = cpu_tiny_params(time_budget_s=budget_s, quorum=1, calibration_runs=0, tolerance=0.0)
    data_dir = cache_dir / "cpu-tiny"
    built = build_cpu_tiny(data_dir, vocab_size=params.vocab_size)
    spec = TrackSpec(
        track_id=params.id,
        hardware_class=params.hardware_class,
        vocab_size=params.vocab_size,
        seq_len=params.seq_len,
        eval_tokens=params.eval_tokens,
        eval_batch_size=params.eval_batch_size,
        time_budget_s=params.time_budget_s,
        grace_s=params.grace_s,
        assets=built.to_track_assets(),
    )
    return spec, data_dir


def score_one(
    scores: Scores, *, executor: Executor, spec: TrackSpec, data_dir: Path, seed: int, workdir: Path
) -> Outcome:
    source = scores.path.read_text(encoding="utf-8")
    result = executor.run(RunRequest(source=source, spec=spec, data_dir=data_dir, seed=seed, workdir=workdir))
    if result.status == "ok":
        scores.val_bpb[seed] = float(result.metrics["val_bpb"])
        scores.steps[seed] = int(result.metrics["steps"])
    else:
        scores.failures[seed] = f"{result.status}: {result.reason}"
    return result


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def summary_table(all_scores: list[Scores], seeds: list[int]) -> str:
    width = max(len(s.name) for s in all_scores)
    header = f"{'train.py':<{width}}  " + "  ".join(f"{'seed ' + str(s):>8}" for s in seeds)
    lines = [header + f"  {'mean':>8}  {'std':>7}  {'steps':>6}"]
    for scores in all_scores:
        cells = "  ".join(f"{_fmt(scores.val_bpb.get(seed)):>8}" for seed in seeds)
        steps = statistics.fmean(scores.steps.values()) if scores.steps else None
        lines.append(
            f"{scores.name:<{width}}  {cells}  {_fmt(scores.mean()):>8}  {_fmt(scores.std()):>7}"
            f"  {_fmt(steps, '.0f'):>6}"
        )
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--train-py", type=Path, action="append", default=[], help="a train.py to score (repeatable)")
    add("--untrained", action="store_true", help="also score the baseline's build_model(ctx), untrained")
    add("--budget", type=float, default=60.0, help="the track's time budget in seconds")
    add("--seeds", type=int, nargs="+", default=[1], help="training seeds, each run once per file")
    add("--threads", type=int, default=2, help="torch threads of each run")
    add("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the track's data is built and kept")
    add("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    if not args.train_py and not args.untrained:
        parser.error("nothing to score: pass --train-py PATH and/or --untrained")
    for path in args.train_py:
        if not path.is_file():
            parser.error(f"--train-py {path}: no such file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    spec, data_dir = cpu_tiny_spec(cache_dir=args.cache_dir, budget_s=args.budget)
    executor = Executor.detect(device="cpu", threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="cpu-tiny-score-") as scratch:
        scratch_dir = Path(scratch)
        all_scores = [Scores(name=str(path), path=path) for path in args.train_py]
        if args.untrained:
            untrained = scratch_dir / "untrained_train.py"
            untrained.write_text(UNTRAINED_SOURCE, encoding="utf-8")
            all_scores.append(Scores(name=UNTRAINED_NAME, path=untrained))
        for seed in args.seeds:
            for index, scores in enumerate(all_scores):
                result = score_one(
                    scores,
                    executor=executor,
                    spec=spec,
                    data_dir=data_dir,
                    seed=seed,
                    workdir=scratch_dir / f"run-{index}-seed-{seed}",
                )
                bpb, steps = result.metrics.get("val_bpb"), result.metrics.get("steps")
                note = "" if result.status == "ok" else f"  {result.status}: {result.reason}"
                print(f"seed {seed}  {scores.name}: val_bpb {_fmt(bpb)}  steps {steps}{note}", file=sys.stderr)
    if args.json:
        report = {
            "track": spec.track_id,
            "budget_s": args.budget,
            "threads": args.threads,
            "seeds": args.seeds,
            "results": [
                {
                    "train_py": s.name,
                    "val_bpb": s.val_bpb,
                    "steps": s.steps,
                    "failures": s.failures,
                    "mean": s.mean(),
                    "std": s.std(),
                }
                for s in all_scores
            ],
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"cpu-tiny, budget {args.budget:g} s, {args.threads} threads, seeds {args.seeds}")
        print(summary_table(all_scores, args.seeds))
        for scores in all_scores:
            for seed, why in scores.failures.items():
                print(f"{scores.name} seed {seed} failed: {why}")
    return 0 if not any(s.failures for s in all_scores) else 1


if __name__ == "__main__":
    sys.exit(main())
