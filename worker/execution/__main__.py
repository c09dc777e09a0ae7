"""`python -m worker.execution`: run one train.py on a track's local files, the way a lease runs it.

    python -m worker.execution --train-py baseline/train.py --spec spec.json --data-dir data \\
        --seed 1 --device auto --workdir run

For a machine with no coordinator and no web stack (a bare GPU box): the spec is a
`TrackSpec.to_json()` file and the data folder holds the track's files by sha256. Prints the
outcome as `key: value` lines (karpathy/autoresearch's summary block), or one JSON object with
`--json`. Exit status 0 only for a valid run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.track_spec import TrackSpec
from worker.execution.executor import Executor, RunRequest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.execution", description=__doc__.splitlines()[0])
    parser.add_argument("--train-py", type=Path, required=True, help="the variant to run")
    parser.add_argument("--spec", type=Path, required=True, help="the track spec, as TrackSpec.to_json()")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder of the track's files by sha256")
    parser.add_argument("--seed", type=int, default=1, help="seeds the initialisation and the data order")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--workdir", type=Path, default=Path("run"), help="the run's scratch folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        spec = TrackSpec.from_json(json.loads(args.spec.read_text(encoding="utf-8")))
        source = args.train_py.read_text(encoding="utf-8")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    executor = Executor.detect(device=args.device, threads=args.threads)
    outcome = executor.run(
        RunRequest(source=source, spec=spec, data_dir=args.data_dir, seed=args.seed, workdir=args.workdir)
    )
    if args.json:
        print(json.dumps({k: v for k, v in outcome.to_json().items() if k != "log_tail"}, sort_keys=True))
    else:
        lines = ["---", f"status: {outcome.status}"]
        if outcome.code:
            lines += [f"layer: {outcome.layer}", f"code: {outcome.code}", f"reason: {outcome.reason}"]
        for key, value in sorted(outcome.metrics.items()):
            lines.append(
                f"{key}: {value:.6f}"
                if isinstance(value, float)
                else f"{key}: {'' if value is None else value}"
            )
        print("\n".join(lines))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
