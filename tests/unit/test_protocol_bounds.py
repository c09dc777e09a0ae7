"""Every field a worker reports is bounded in the shared models, so neither side builds nonsense."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.protocol import AgentUsage, HeartbeatRequest, RunMetrics, RunPayload
from shared.run_codes import Layer


def payload(**fields: Any) -> RunPayload:
    base: dict[str, Any] = {
        "lease_id": "l1", "worker_id": "w1", "track_id": "cpu-tiny", "kind": "verify", "variant_hash": "ab" * 32,
        "seed": 7, "status": "ok", "finished_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return RunPayload(**{**base, **fields})


def problem(error: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[str | int, ...], str]:
    [first] = error.value.errors()
    return first["loc"], first["msg"]


def test_a_count_beyond_2_53_cannot_be_built_so_a_worker_never_signs_one() -> None:
    with pytest.raises(ValidationError) as refused:
        RunMetrics(steps=2**64)
    assert problem(refused) == (("steps",), "Input should be less than or equal to 9007199254740991")
    assert RunMetrics(steps=2**53 - 1).steps == 2**53 - 1


@pytest.mark.parametrize("field", ["val_bpb", "holdout_bpb", "val_loss", "train_seconds", "eval_seconds"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_metrics_are_finite(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as refused:
        RunMetrics(**{field: value})
    assert problem(refused) == ((field,), "Input should be a finite number")


@pytest.mark.parametrize(
    ("fields", "loc", "msg"),
    [
        ({"val_bpb": 1000.5}, ("val_bpb",), "Input should be less than or equal to 1000"),
        ({"holdout_bpb": -0.1}, ("holdout_bpb",), "Input should be greater than or equal to 0"),
        ({"train_seconds": 1e7 + 1}, ("train_seconds",), "Input should be less than or equal to 10000000"),
        ({"num_params": -1}, ("num_params",), "Input should be greater than or equal to 0"),
        ({"peak_memory_bytes": 2**53}, ("peak_memory_bytes",), "Input should be less than or equal to 9007199254740991"),
    ],
)
def test_metrics_out_of_range_are_refused(fields: dict[str, float], loc: tuple[str], msg: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RunMetrics(**fields)  # type: ignore[arg-type]
    assert problem(refused) == (loc, msg)


def test_heartbeats_are_bounded_like_reports() -> None:
    assert HeartbeatRequest(step=10, loss=2.5, elapsed_s=3.0).step == 10
    for fields, loc in [({"step": -1}, "step"), ({"loss": float("nan")}, "loss"), ({"elapsed_s": 1e9}, "elapsed_s")]:
        with pytest.raises(ValidationError) as refused:
            HeartbeatRequest(**fields)  # type: ignore[arg-type]
        assert problem(refused)[0] == (loc,)


def test_agent_usage_counts_and_cost_are_bounded() -> None:
    with pytest.raises(ValidationError) as refused:
        AgentUsage(agent="claude", input_tokens=2**60)
    assert problem(refused) == (("input_tokens",), "Input should be less than or equal to 9007199254740991")
    with pytest.raises(ValidationError) as refused:
        AgentUsage(agent="claude", cost_usd=2e6)
    assert problem(refused) == (("cost_usd",), "Input should be less than or equal to 1000000")


def test_layer_is_one_of_the_run_codes_layers_and_code_has_the_code_pattern() -> None:
    for layer in Layer:
        assert payload(layer=layer.value, code="out_of_memory").layer == layer.value
    with pytest.raises(ValidationError) as refused:
        payload(layer="kernel")
    assert problem(refused) == (
        ("layer",), "Input should be 'policy', 'guard', 'sandbox', 'budget', 'probe', 'report' or 'harness'"
    )
    with pytest.raises(ValidationError) as refused:
        payload(code="Out Of Memory")
    assert problem(refused) == (("code",), "String should match pattern '^[a-z][a-z0-9_]{0,63}$'")


@pytest.mark.parametrize(
    ("env", "msg"),
    [
        ({f"k{i}": 1 for i in range(65)}, "Value error, env has 65 keys, more than 64"),
        ({"k" * 65: 1}, f"Value error, env key {'k' * 20!r}... is longer than 64 characters"),
        ({"device": "x" * 501}, "Value error, env['device']: text over 500 characters"),
        ({"threads": 2**60}, "Value error, env['threads']: number beyond +-9007199254740991"),
        ({"flops": 1e300}, "Value error, env['flops']: number beyond +-9007199254740991"),
        ({"gpus": [{"name": "h100"}]}, "Value error, env['gpus'][0]: dict is not a JSON scalar"),
        ({"gpus": list(range(33))}, "Value error, env['gpus'] holds 33 entries, more than 32"),
    ],
)
def test_env_is_a_small_flat_record(env: dict[str, Any], msg: str) -> None:
    with pytest.raises(ValidationError) as refused:
        payload(env=env)
    assert problem(refused) == (("env",), msg)


def test_a_realistic_env_passes() -> None:
    env = {
        "python": "3.11.7", "torch": "2.5.1", "triton": None, "numpy": "2.1.0", "device_name": "AMD EPYC",
        "cuda": None, "threads": 16, "hardware_class": "cpu", "layers": ["namespace", "seccomp"],
        "limits": {"memory_bytes": 8 * 2**30, "wall_s": 72.0},
    }
    assert payload(env=env).env == env
