"""One variant through exactly the path a lease takes: the static policy, then the sandboxed runner,
then the harness and its probes. `worker run` and the daemon both come through here, so a variant
behaves on a researcher's machine as it will on a volunteer's.

The result says which layer stopped a run and a stable code for why:

| layer     | codes                                                                          |
|-----------|--------------------------------------------------------------------------------|
| `policy`  | the policy's own codes (`forbidden_call`, `io_access`, ...; shared/policy)     |
| `budget`  | `budget_exceeded`, `eval_timeout`, `startup_timeout`, `exit_timeout`           |
| `sandbox` | `out_of_memory`, `file_too_large`, `process_limit`, `sandbox_failed`           |
| `probe`   | the probe's name, from a reason `probe <name>: ...`: `checksum`,               |
|           | `statelessness`, `causality`, `output_shape`, `output_dtype`, `finite_logits`  |
| `harness` | `variant_crashed`, `contract_violation`, `killed_by_signal`, `no_result`,       |
|           | `harness_setup_failed`, `unreadable_result`, or a code the harness wrote       |
| None      | a valid run (code None), or `aborted` by the worker                            |
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.policy import check_source
from shared.track_spec import TrackSpec
from worker import runner
from worker.runner import HarnessResult, Progress
from worker.sandbox import Sandbox, SandboxConfig

OK = "ok"
CRASHED = "crashed"
REJECTED = "rejected"
PROBE_PREFIX = "probe "
# The metrics that score a run; only a valid run reports them.
SCORE_KEYS = ("val_bpb", "val_loss")
# The layer that decided each outcome the runner codes.
_RUNNER_CODE_LAYERS: dict[str, str | None] = {
    runner.BUDGET_EXCEEDED: "budget",
    runner.EVAL_TIMEOUT: "budget",
    runner.STARTUP_TIMEOUT: "budget",
    runner.EXIT_TIMEOUT: "budget",
    runner.OUT_OF_MEMORY: "sandbox",
    runner.FILE_TOO_LARGE: "sandbox",
    runner.PROCESS_LIMIT: "sandbox",
    runner.SANDBOX_FAILED: "sandbox",
    runner.ABORTED: None,
}


class RunHarness(Protocol):
    """worker.runner.run_harness bound to a sandbox, or a stand-in with the same keyword arguments."""

    def __call__(
        self,
        *,
        train_py: Path,
        spec: TrackSpec,
        data_dir: Path,
        seed: int,
        workdir: Path,
        device: str = ...,
        threads: int | None = ...,
        on_progress: Callable[[Progress], None] | None = ...,
        should_abort: Callable[[], bool] | None = ...,
        eval_timeout_s: float | None = ...,
    ) -> HarnessResult: ...


@dataclass(frozen=True)
class LocalRunResult:
    status: str  # "ok", "crashed" or "rejected" (shared.protocol.RunStatus)
    layer: str | None  # "policy", "sandbox", "harness", "probe", "budget"; None for a valid run
    code: str | None  # stable: see the module docstring
    reason: str | None
    metrics: dict[str, Any]  # shared.protocol.RunMetrics fields
    env: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_local(
    *,
    source: str,
    spec: TrackSpec,
    data_dir: Path,
    seed: int,
    workdir: Path,
    device: str = "auto",
    threads: int | None = None,
    sandbox: SandboxConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
    run_harness: RunHarness | None = None,
    enforce_policy: bool = True,
) -> LocalRunResult:
    """Check `source` with the static policy, then train and score it in the sandboxed harness.

    `workdir` becomes the run's scratch folder (train.py, the spec, the log and the result go
    there). `sandbox` None means the default SandboxConfig(); it applies to the real runner only:
    a given `run_harness` (the daemon's, or a test's stand-in) brings its own.

    A run that is not "ok" carries no score: `val_bpb` and `val_loss` are dropped whatever the
    harness wrote, so a run a probe refused can never be read as a result. `enforce_policy=False`
    exists for the red-team tests alone, which show what the layers behind the policy do with a
    variant the policy would have refused; no command line reaches it.
    """
    report = check_source(source)
    if enforce_policy and not report.ok:
        first, others = report.violations[0], len(report.violations) - 1
        more = f" (and {others} more)" if others else ""
        return LocalRunResult(
            status=REJECTED,
            layer="policy",
            code=first.code,
            reason=f"the static policy refused train.py: {first.describe()}{more}",
            metrics={},
        )
    if run_harness is None:
        run_harness = functools.partial(runner.run_harness, sandbox=Sandbox.detect(sandbox, device=device))
    workdir.mkdir(parents=True, exist_ok=True)
    train_py = workdir / "train.py"
    train_py.write_text(source, encoding="utf-8")
    result = run_harness(
        train_py=train_py,
        spec=spec,
        data_dir=data_dir,
        seed=seed,
        workdir=workdir,
        device=device,
        threads=threads,
        on_progress=on_progress,
        should_abort=should_abort,
    )
    layer, code = classify(result)
    metrics = result.metrics if result.status == OK else _without_score(result.metrics)
    return LocalRunResult(
        status=result.status,
        layer=layer,
        code=code,
        reason=result.reason,
        metrics=metrics,
        env=result.env,
        log_tail=result.log_tail,
        wall_seconds=result.wall_seconds,
    )


def _without_score(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metrics.items() if key not in SCORE_KEYS}


def classify(result: HarnessResult) -> tuple[str | None, str | None]:
    """(layer, code) of a runner result: who stopped the run, and the stable code for why."""
    if result.code in _RUNNER_CODE_LAYERS:
        return _RUNNER_CODE_LAYERS[result.code], result.code
    if result.status == OK:
        return None, None
    reason = result.reason or ""
    if result.status == REJECTED and reason.startswith(PROBE_PREFIX):
        name = reason[len(PROBE_PREFIX) :].split(":", 1)[0].strip()
        return "probe", result.code or name
    if result.code is not None:
        return "harness", result.code
    return "harness", "contract_violation" if result.status == REJECTED else "variant_crashed"
