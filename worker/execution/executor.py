"""From "this source, this spec, this seed" to an Outcome, by the one path every run takes.

`worker join` and `worker run` build one Executor (the sandbox detected once for the device) and
call `run` for each variant: the static policy, then the supervised, sandboxed scorer and host.
A variant behaves on a researcher's machine exactly as it will on a volunteer's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared import run_codes as codes
from shared.track_spec import TrackSpec
from worker.execution.gate import policy_report
from worker.execution.outcome import Outcome, make_outcome
from worker.execution.sandbox import Sandbox, SandboxConfig
from worker.execution.supervisor import Progress, supervise


@dataclass(frozen=True)
class RunRequest:
    source: str
    spec: TrackSpec  # with the budget the run is judged by
    data_dir: Path  # the asset cache: train shards, val shard and byte table by sha256
    seed: int
    workdir: Path  # becomes the run's scratch folder
    holdout: bytes | None = None  # the lease's held-out windows (.npy), scored beside the val shard


class Executor:
    def __init__(self, *, sandbox: Sandbox, device: str = "cpu", threads: int | None = None) -> None:
        self.sandbox = sandbox
        self.device = device
        self.threads = threads

    @classmethod
    def detect(
        cls, *, device: str = "auto", threads: int | None = None, config: SandboxConfig | None = None
    ) -> Executor:
        return cls(
            sandbox=Sandbox.detect(config, device=device), device=resolve_device(device), threads=threads
        )

    def run(
        self,
        request: RunRequest,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        should_abort: Callable[[], bool] | None = None,
        enforce_policy: bool = True,
    ) -> Outcome:
        """Check the source, then train and score it; never raises for anything the variant does.

        `enforce_policy=False` exists for the red-team tests alone, which show what the layers
        behind the policy do with a variant the policy would have refused; no command line
        reaches it.
        """
        report = policy_report(request.source)
        if enforce_policy and not report.ok:
            first, others = report.violations[0], len(report.violations) - 1
            more = f" (and {others} more)" if others else ""
            return make_outcome(
                status=codes.REJECTED,
                code=first.code,
                reason=f"the static policy refused train.py: {first.describe()}{more}",
                metrics={},
            )
        request.workdir.mkdir(parents=True, exist_ok=True)
        train_py = request.workdir / "train.py"
        train_py.write_text(request.source, encoding="utf-8")
        run = supervise(
            train_py=train_py,
            spec=request.spec,
            data_dir=request.data_dir,
            seed=request.seed,
            workdir=request.workdir,
            device=self.device,
            threads=self.threads,
            sandbox=self.sandbox,
            holdout=request.holdout,
            on_progress=on_progress,
            should_abort=should_abort,
        )
        return make_outcome(
            status=run.status,
            code=run.code,
            reason=run.reason,
            metrics=run.metrics,
            env=run.env,
            log_tail=run.log_tail,
            wall_seconds=run.wall_seconds,
            public_reason=run.public_reason,
        )


def resolve_device(requested: str) -> str:
    """ "auto" is CUDA when torch sees a device; "cpu" and "cuda" are taken as asked."""
    if requested == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
