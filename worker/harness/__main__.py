"""`python -m worker.harness`: train one variant under the track's clock, score it, write the result.

Example:
    python -m worker.harness --train-py train.py --spec spec.json --data-dir data --seed 1 \\
        --device auto --threads 2 --result result.json --progress-fd 3 --val-fd 4

Exit status 0 whenever the result file was written, whatever the run's status; 2 when the run
could not start (bad arguments, unreadable data, no GPU), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.track_spec import TrackSpec
from worker.harness.result import summary_block, write_result
from worker.harness.run import HarnessConfig, HarnessSetupError, run

SETUP_FAILED = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker.harness", description=__doc__.splitlines()[0])
    parser.add_argument("--train-py", type=Path, required=True, help="the variant's train.py")
    parser.add_argument("--spec", type=Path, required=True, help="the track spec, as TrackSpec.to_json()")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder of asset files named by sha256")
    parser.add_argument(
        "--seed", type=int, required=True, help="seeds torch, numpy, random and the data order"
    )
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto", help="where to train")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--result", type=Path, required=True, help="where to write the result JSON")
    parser.add_argument("--progress-fd", type=int, default=None, help="inherited fd for JSON-line progress")
    parser.add_argument(
        "--val-fd",
        type=int,
        default=None,
        help="inherited fd that carries the val shard's .npy bytes once training has finished"
        " (default: read it from --data-dir)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spec = TrackSpec.from_json(json.loads(args.spec.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"harness: error: cannot read the track spec {args.spec}: {exc}", file=sys.stderr)
        return SETUP_FAILED
    config = HarnessConfig(
        train_py=args.train_py.resolve(),
        spec=spec,
        data_dir=args.data_dir,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        progress_fd=args.progress_fd,
        val_fd=args.val_fd,
    )
    try:
        outcome = run(config)
    except HarnessSetupError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return SETUP_FAILED
    write_result(args.result, outcome)
    print(summary_block(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
