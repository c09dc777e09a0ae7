"""Executor.run: the path every lease takes (the static policy, then the supervised sandbox), and the
layer and stable code each outcome gets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shared import run_codes as codes
from shared.track_spec import TrackSpec
from tests.trackfactory import UNIFORM_MODEL, build_track
from worker.execution import Executor, Outcome, RunRequest
from worker.execution.outcome import layer_of, make_outcome
from worker.execution.sandbox import GIB, SandboxConfig


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=1.0, grace_s=1.0)


def run(
    tmp_path: Path, track: tuple[TrackSpec, Path], source: str, *, config: SandboxConfig | None = None
) -> Outcome:
    spec, data_dir = track
    executor = Executor.detect(device="cpu", threads=1, config=config)
    request = RunRequest(
        source=textwrap.dedent(source), spec=spec, data_dir=data_dir, seed=1, workdir=tmp_path / "run"
    )
    return executor.run(request)


def decided(outcome: Outcome) -> tuple[str, str | None, str | None, str | None]:
    return outcome.status, outcome.layer, outcome.code, outcome.reason


def test_a_policy_refusal_starts_no_process_and_names_the_rule(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    import os


    def train(ctx):
        return eval("os.getcwd()")
    """
    outcome = run(tmp_path, track, source)

    assert (outcome.status, outcome.layer, outcome.code) == ("rejected", "policy", "import_not_allowed")
    assert outcome.reason is not None
    assert outcome.reason.startswith(
        "the static policy refused train.py: line 2: import_not_allowed: `os` is not on the import allowlist ("
    )
    assert outcome.reason.endswith(") (and 1 more)")
    assert (outcome.metrics, outcome.env, outcome.log_tail, outcome.wall_seconds) == ({}, {}, "", 0.0)
    assert not (tmp_path / "run").exists()  # no train.py written, no process started


def test_an_honest_variant_is_ok_and_its_source_is_what_ran(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    outcome = run(tmp_path, track, UNIFORM_MODEL)

    assert decided(outcome) == ("ok", None, None, None), outcome.log_tail
    assert outcome.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-6)
    assert (tmp_path / "run" / "train.py").read_text() == textwrap.dedent(UNIFORM_MODEL)
    assert outcome.wall_seconds > outcome.metrics["train_seconds"]


def test_a_memory_bomb_that_passes_the_policy_is_stopped_by_the_sandbox(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    import torch


    def train(ctx):
        hoard = []
        for _ in range(64):
            hoard.append(torch.empty(1 << 30, dtype=torch.uint8))
        return hoard
    """
    outcome = run(tmp_path, track, source, config=SandboxConfig(memory_bytes=4 * GIB))

    assert (outcome.status, outcome.layer, outcome.code) == ("crashed", "sandbox", "out_of_memory")
    assert outcome.reason is not None
    assert outcome.reason.startswith(
        "out of memory (the sandbox caps memory at 4 GiB): train() raised RuntimeError at train.py:8 in train: "
    )


@pytest.mark.parametrize(
    ("code", "layer"),
    [
        (None, None),
        ("import_not_allowed", "policy"),
        ("forbidden_call", "policy"),
        (codes.GUARD_PROCESS, "guard"),
        (codes.SECCOMP, "guard"),
        (codes.OUT_OF_MEMORY, "sandbox"),
        (codes.SANDBOX_FAILED, "sandbox"),
        (codes.BUDGET_EXCEEDED, "budget"),
        (codes.OVER_BUDGET, "budget"),
        (codes.EVAL_TIMEOUT, "budget"),
        (codes.SLOW_FORWARD, "budget"),
        (codes.STARTUP_TIMEOUT, "budget"),
        (codes.CAUSALITY, "probe"),
        (codes.STATELESSNESS, "probe"),
        (codes.FINITE_LOGITS, "probe"),
        (codes.REPORT_OUT_OF_RANGE, "report"),
        (codes.VARIANT_CRASHED, "harness"),
        (codes.CONTRACT_VIOLATION, "harness"),
        (codes.KILLED_BY_SIGNAL, "harness"),
        (codes.HARNESS_SETUP_FAILED, "harness"),
        (codes.ABORTED, None),
        ("a_code_nobody_defined", "harness"),
    ],
)
def test_each_code_names_the_layer_that_decided_it(code: str | None, layer: str | None) -> None:
    assert layer_of(code) == layer


def test_a_run_that_is_not_ok_carries_no_score_whatever_was_written() -> None:
    written = {"val_bpb": 0.1, "val_loss": 0.2, "holdout_bpb": 0.3, "steps": 5, "train_seconds": 1.0}

    refused = make_outcome(status="rejected", code=codes.CAUSALITY, reason="probe causality: ...", metrics=written)
    valid = make_outcome(status="ok", code=codes.CAUSALITY, reason="ignored", metrics=written)

    assert (refused.layer, refused.metrics) == ("probe", {"steps": 5, "train_seconds": 1.0})
    assert (valid.layer, valid.code, valid.reason, valid.metrics) == (None, None, None, written)


@pytest.mark.parametrize(
    ("status", "code"), [("crashed", "variant_crashed"), ("rejected", "contract_violation")]
)
def test_a_failure_without_a_code_gets_the_harness_default_for_its_status(status: str, code: str) -> None:
    outcome = make_outcome(status=status, code=None, reason="something went wrong", metrics={})

    assert (outcome.layer, outcome.code, outcome.ok) == ("harness", code, False)
