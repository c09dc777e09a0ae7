"""One run of a train.py through the worker's execution on a small synthetic GPU track.

Builds the track on disk from Python's own help text (tests/trackfactory.py, no download), with a
GPU hardware class so the baseline takes its GPU path (bf16 autocast, torch.compile, Muon on CUDA),
then runs the variant exactly as a lease would: sandbox, guard, scorer and replica, the GPU bound
in. Prints the outcome as JSON, with the sandbox layers this machine enforces. Imports only the
standard library, torch, triton and numpy, so it runs on a bare GPU box.

    python bench/gpu_track_run.py --budget 90 --hardware-class h100-sxm-80gb
    python bench/gpu_track_run.py --device cpu --hardware-class cpu --seq-len 64 --budget 5   # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.trackfactory import build_track  # noqa: E402
from worker.execution import Executor, RunRequest  # noqa: E402
from worker.execution.sandbox import detect_report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-py", type=Path, default=ROOT / "baseline" / "train.py")
    parser.add_argument("--budget", type=float, default=90.0, help="training seconds, compilation included")
    parser.add_argument("--hardware-class", default="h100-sxm-80gb")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke run of this script")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gpu-track-") as tmp:
        spec, data_dir = build_track(
            Path(tmp),
            vocab_size=args.vocab_size,
            seq_len=args.seq_len,
            eval_tokens=32 * args.seq_len,
            eval_batch_size=8,
            time_budget_s=args.budget,
            grace_s=30.0,
            n_train_tokens=4_000_000,
            hardware_class=args.hardware_class,
        )
        executor = Executor.detect(device=args.device)
        outcome = executor.run(
            RunRequest(
                source=args.train_py.read_text(),
                spec=spec,
                data_dir=data_dir,
                seed=args.seed,
                workdir=Path(tmp) / "run",
            )
        )
    report = {
        "status": outcome.status,
        "layer": outcome.layer,
        "code": outcome.code,
        "reason": outcome.reason,
        "metrics": outcome.metrics,
        "env": outcome.env,
        "wall_seconds": outcome.wall_seconds,
        "sandbox": detect_report(device=args.device).to_json(),
        "log_tail": outcome.log_tail[-4000:] if outcome.log_tail else None,
    }
    print(json.dumps(report, indent=2, default=str))
    return 0 if outcome.status == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
