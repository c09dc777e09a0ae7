"""run_local: the path every lease takes (policy, sandboxed runner, harness), and the layer and
stable code it gives each outcome."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shared.track_spec import TrackSpec
from tests.trackfactory import UNIFORM_MODEL, build_track
from worker.localrun import LocalRunResult, classify, run_local
from worker.runner import HarnessResult
from worker.sandbox import GIB, SandboxConfig


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=1.0, grace_s=1.0)


def run(
    tmp_path: Path, track: tuple[TrackSpec, Path], source: str, *, sandbox: SandboxConfig | None = None
) -> LocalRunResult:
    spec, data_dir = track
    return run_local(
        source=textwrap.dedent(source),
        spec=spec,
        data_dir=data_dir,
        seed=1,
        workdir=tmp_path / "run",
        device="cpu",
        threads=1,
        sandbox=sandbox,
    )


def outcome(result: LocalRunResult) -> tuple[str, str | None, str | None, str | None]:
    return result.status, result.layer, result.code, result.reason


def test_a_policy_refusal_starts_no_process_and_names_the_rule(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    import os


    def train(ctx):
        return eval("os.getcwd()")
    """
    result = run(tmp_path, track, source)

    assert outcome(result) == (
        "rejected",
        "policy",
        "import_not_allowed",
        "the static policy refused train.py: line 2: import_not_allowed: `os` is not on the import allowlist"
        " (abc, collections, contextlib, copy, dataclasses, enum, functools, itertools, math, numbers,"
        " numpy, operator, random, statistics, time, torch, triton, typing, warnings, shared.kernels)"
        " (and 1 more)",
    )
    assert result.metrics == {}
    assert not (tmp_path / "run").exists()


def test_an_honest_variant_is_ok_with_the_harness_metric(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    result = run(tmp_path, track, UNIFORM_MODEL)

    assert outcome(result) == ("ok", None, None, None), result.log_tail
    assert result.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-5)
    assert (tmp_path / "run" / "train.py").read_text() == textwrap.dedent(UNIFORM_MODEL)


def test_a_variant_that_raises_crashed_in_the_harness(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    source = """
    def train(ctx):
        raise ValueError("the learning rate is a string")
    """
    result = run(tmp_path, track, source)

    assert outcome(result) == (
        "crashed",
        "harness",
        "variant_crashed",
        "train() raised ValueError: the learning rate is a string",
    )


def test_a_variant_that_overruns_is_stopped_by_the_budget(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    import time


    def train(ctx):
        time.sleep(600)
    """
    result = run(tmp_path, track, source)

    assert outcome(result) == ("crashed", "budget", "budget_exceeded", "exceeded time budget (1s + 1s grace)")


def test_a_memory_bomb_that_passes_the_policy_is_stopped_by_the_sandbox(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    import torch


    def train(ctx):
        hoard = [torch.empty(1 << 30, dtype=torch.uint8) for _ in range(64)]
        return hoard
    """
    result = run(tmp_path, track, source, sandbox=SandboxConfig(memory_bytes=4 * GIB))

    assert (result.status, result.layer, result.code) == ("crashed", "sandbox", "out_of_memory")
    assert result.reason is not None
    assert result.reason.startswith("out of memory (the sandbox caps memory at 4 GiB): train() raised")


def harness_result(status: str, reason: str | None, code: str | None = None) -> HarnessResult:
    return HarnessResult(
        status=status, reason=reason, metrics={}, env={}, log_tail="", wall_seconds=1.0, code=code
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (harness_result("ok", None), (None, None)),
        (harness_result("rejected", "probe causality: logits at position 12 changed"), ("probe", "causality")),
        (harness_result("rejected", "probe finite_logits: logits contain NaN"), ("probe", "finite_logits")),
        (harness_result("rejected", "train() left a torch function or dispatch mode active"), ("harness", "contract_violation")),
        (harness_result("crashed", "train() raised KeyError: 'x'"), ("harness", "variant_crashed")),
        (harness_result("crashed", "evaluation took longer than 60s", "eval_timeout"), ("budget", "eval_timeout")),
        (harness_result("crashed", "did not start training within 120s", "startup_timeout"), ("budget", "startup_timeout")),
        (harness_result("crashed", "out of memory: train() raised MemoryError", "out_of_memory"), ("sandbox", "out_of_memory")),
        (harness_result("crashed", "the sandbox could not start the harness: bwrap: x", "sandbox_failed"), ("sandbox", "sandbox_failed")),
        (harness_result("crashed", "harness was killed by signal SIGKILL", "killed_by_signal"), ("harness", "killed_by_signal")),
        (harness_result("crashed", "aborted", "aborted"), (None, "aborted")),
    ],
)  # fmt: skip
def test_each_outcome_gets_the_layer_that_decided_it(
    result: HarnessResult, expected: tuple[str | None, str | None]
) -> None:
    assert classify(result) == expected
