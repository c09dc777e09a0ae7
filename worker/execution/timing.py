"""Every time rule of a run, in one place: what training may take, and what evaluation may.

The budget is the track's. Evaluation is not training time: an honest model's evaluation costs a
fraction of its training (forward passes only, over a fixed number of tokens), so a run whose
evaluation takes much longer is doing something else in it. The supervisor enforces the training
rules and a backstop on evaluation; the scorer enforces the evaluation rules request by request.
Track settings in the spec's `extra` (`eval_warmup_s`, `eval_cap_s`, `eval_timeout_s`) override the
defaults for tracks whose evaluation is unusually large next to their budget.
"""

from __future__ import annotations

from shared.track_spec import TrackSpec

# train() may return this much past the budget: one late step's jitter, no more.
OVER_BUDGET_FLOOR_S = 0.5
OVER_BUDGET_FRACTION = 0.02
# The forwards of an evaluation (warm-up aside) may take at most this share of the budget, or the
# floor on a short budget. What a model does beyond its honest forwards within the cap is the
# most it can train off the clock (worker/SANDBOX.md, "honest time").
EVAL_CAP_FRACTION = 0.3
EVAL_CAP_FLOOR_S = 10.0
# The first forward may compile (torch.compile recompiles for eval mode on CUDA); on a CPU it is
# judged against the other forwards once they are known, and waited for at most this long.
CPU_WARMUP_WAIT_S = 2.0
CUDA_WARMUP_S = 30.0
# Beyond the scorer's own limits: reading the data, building the plan, the finish.
EVAL_TIMEOUT_SLACK_S = 30.0


def over_budget_tolerance(budget_s: float) -> float:
    return max(OVER_BUDGET_FLOOR_S, OVER_BUDGET_FRACTION * budget_s)


def configured(spec: TrackSpec, key: str) -> float | None:
    value = spec.extra.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def configured_warmup(spec: TrackSpec) -> float | None:
    return configured(spec, "eval_warmup_s")


def warmup_wait(spec: TrackSpec, device: str) -> float:
    """How long the first forward is waited for (the limit it is judged by may be tighter)."""
    warmup = configured_warmup(spec)
    if warmup is not None:
        return warmup
    if device == "cuda":
        return max(CUDA_WARMUP_S, 0.2 * spec.time_budget_s)
    return max(CPU_WARMUP_WAIT_S, 0.05 * spec.time_budget_s)


def eval_cap(spec: TrackSpec) -> float:
    """What the evaluation's forwards may take together, warm-up aside."""
    cap = configured(spec, "eval_cap_s")
    return cap if cap is not None else max(EVAL_CAP_FLOOR_S, EVAL_CAP_FRACTION * spec.time_budget_s)


def eval_timeout(spec: TrackSpec, device: str) -> float:
    """The supervisor's backstop on the whole evaluation, should the scorer stall."""
    timeout = configured(spec, "eval_timeout_s")
    if timeout is not None:
        return timeout
    return warmup_wait(spec, device) + eval_cap(spec) + EVAL_TIMEOUT_SLACK_S
