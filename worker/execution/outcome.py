"""What a run came to: its status, the layer that decided it, a stable code and the metrics.

A run that is not "ok" carries no score: `val_bpb`, `val_loss` and `holdout_bpb` are dropped,
whatever was written, so a run a probe refused can never be read as a result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shared import run_codes as codes
from shared.policy.report import CODES as POLICY_CODES

SCORE_KEYS = ("val_bpb", "val_loss", "holdout_bpb")


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "crashed" or "rejected" (shared.run_codes)
    layer: str | None  # shared.run_codes.Layer; None for a valid run or an aborted one
    code: str | None  # stable: shared.run_codes and the policy's codes
    reason: str | None
    metrics: dict[str, Any]  # shared.protocol.RunMetrics fields
    env: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""  # the last few KB of the run's log, for the volunteer's eyes only
    wall_seconds: float = 0.0
    # What a report may carry of the reason (worker.execution.reasons): the same as `reason` unless
    # that came out of the variant's process.
    public_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == codes.OK

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def layer_of(code: str | None) -> str | None:
    if code is None:
        return None
    if code in POLICY_CODES:
        return codes.Layer.policy.value
    layer = codes.LAYER_OF.get(code, codes.Layer.harness)
    return None if layer is None else layer.value


def make_outcome(
    *,
    status: str,
    code: str | None,
    reason: str | None,
    metrics: dict[str, Any],
    env: dict[str, Any] | None = None,
    log_tail: str = "",
    wall_seconds: float = 0.0,
    public_reason: str | None = None,
) -> Outcome:
    out_of_range = [
        k for k in SCORE_KEYS if isinstance(metrics.get(k), float) and not 0 <= metrics[k] <= codes.MAX_BPB
    ]
    if status == codes.OK and out_of_range:
        status, code = codes.REJECTED, codes.REPORT_OUT_OF_RANGE
        reason = public_reason = (
            f"the model scored {out_of_range[0]} = {metrics[out_of_range[0]]:.4g}, beyond {codes.MAX_BPB:g}:"
            " no trained model loses that much, and no report may carry it"
        )
    if status == codes.OK:
        code, reason, public_reason = None, None, None
    elif code is None:
        code = codes.VARIANT_CRASHED if status == codes.CRASHED else codes.CONTRACT_VIOLATION
    kept = metrics if status == codes.OK else {k: v for k, v in metrics.items() if k not in SCORE_KEYS}
    return Outcome(
        status=status,
        layer=layer_of(code),
        code=code,
        reason=reason,
        metrics=kept,
        env=env or {},
        log_tail=log_tail,
        wall_seconds=wall_seconds,
        public_reason=public_reason if public_reason is not None else reason,
    )
