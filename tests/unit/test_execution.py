"""Variants run for real through the Executor (policy, sandbox, guard, scorer and host) on a byte-level track.

On this track every non-special token is one byte, so a model that predicts the uniform
distribution over 256 ids scores exactly log2(256) = 8 bits per byte: an exact figure to check
the scorer's arithmetic against.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.track_spec import TrackSpec
from tests.trackfactory import UNIFORM_MODEL, UNIFORM_MODULE, build_track
from worker.execution import Executor, Outcome, Progress, RunRequest
from worker.execution.sandbox import PROJECT_ROOT, SandboxConfig
from worker.execution.timing import over_budget_tolerance

BUDGET_S = 3.0
GRACE_S = 2.0


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=BUDGET_S, grace_s=GRACE_S)


@pytest.fixture(scope="module")
def executor() -> Executor:
    """What a lease runs in: every sandbox layer this machine has, and the run-time guard."""
    return Executor.detect(device="cpu", threads=1)


def run_variant(
    tmp_path: Path,
    track: tuple[TrackSpec, Path],
    executor: Executor,
    source: str,
    *,
    spec: TrackSpec | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    enforce_policy: bool = True,
) -> Outcome:
    track_spec, data_dir = track
    request = RunRequest(
        source=textwrap.dedent(source), spec=spec or track_spec, data_dir=data_dir, seed=7, workdir=tmp_path / "work"
    )
    return executor.run(request, on_progress=on_progress, enforce_policy=enforce_policy)


def decided(outcome: Outcome) -> tuple[str, str | None, str | None, str | None]:
    return outcome.status, outcome.layer, outcome.code, outcome.reason


def test_uniform_model_scores_exactly_eight_bits_per_byte(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    outcome = run_variant(tmp_path, track, executor, UNIFORM_MODEL)

    assert decided(outcome) == ("ok", None, None, None), outcome.log_tail
    assert outcome.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-6)
    assert outcome.metrics["val_loss"] == pytest.approx(math.log(256), abs=1e-6)
    assert outcome.metrics["num_params"] == 256
    assert (outcome.metrics["steps"], outcome.metrics["tokens"]) == (0, 0)
    assert outcome.env["threads"] == 1 and outcome.env["torch"]
    # Every window once, plus the probes hidden among them.
    assert outcome.env["eval"]["forwards"] > outcome.env["eval"]["probe_forwards"] > 0


# --- crashes and the contract ------------------------------------------------------------------


def test_variant_that_raises_is_crashed_with_its_own_frame_and_the_first_line_of_the_message(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    source = """
    def train(ctx):
        raise ValueError("a long story\\nlearning rate too high")
    """
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == (
        "crashed",
        "harness",
        "variant_crashed",
        "train() raised ValueError at train.py:3 in train: a long story",
    )
    assert 'raise ValueError("a long story' in outcome.log_tail  # the whole traceback is in the log
    assert "learning rate too high" in outcome.log_tail


def test_variant_failing_at_import_is_crashed(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    outcome = run_variant(tmp_path, track, executor, "x = 1 / 0\n")

    assert decided(outcome) == (
        "crashed",
        "harness",
        "variant_crashed",
        "importing train.py raised ZeroDivisionError at train.py:1 in <module>: division by zero",
    )


def test_variant_without_train_function_is_rejected(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    outcome = run_variant(tmp_path, track, executor, "TRAIN = None\n")

    assert decided(outcome) == (
        "rejected",
        "harness",
        "contract_violation",
        "train.py defines no train(ctx) function",
    )


def test_train_returning_something_other_than_a_module_is_rejected(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    outcome = run_variant(tmp_path, track, executor, "def train(ctx):\n    return {'weights': 1}\n")

    assert decided(outcome) == (
        "rejected",
        "harness",
        "contract_violation",
        "train() returned dict, not a torch.nn.Module",
    )


# --- the clock ---------------------------------------------------------------------------------


def test_clock_starts_before_the_variant_is_imported(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    source = (
        UNIFORM_MODULE
        + """
import time

time.sleep(1.0)  # "free" work at import time


def train(ctx):
    left = ctx.time_left()
    if left > ctx.time_budget_s - 1.0:
        raise AssertionError(f"import time was not charged: {left:.3f}s left")
    return Uniform(ctx.vocab_size)
"""
    )
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == ("ok", None, None, None), outcome.reason
    # The supervisor's clock charged it too. That clock times the events as it reads them, so a read
    # of `train_started` delayed a few milliseconds on a busy machine shortens the interval by as
    # much: the second of import is told from none by a margin, not to the millisecond.
    assert outcome.metrics["train_seconds"] >= 0.9


def test_train_returning_past_budget_and_tolerance_is_over_budget_though_within_grace(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    # A long grace, so that a loaded machine cannot turn the late return into a kill.
    spec = dataclasses.replace(track[0], grace_s=5.0)
    late_s = BUDGET_S + over_budget_tolerance(BUDGET_S) + 0.7
    source = (
        UNIFORM_MODULE
        + f"""
import time


def train(ctx):
    time.sleep({late_s})
    return Uniform(ctx.vocab_size)
"""
    )
    outcome = run_variant(tmp_path, track, executor, source, spec=spec)

    assert (outcome.status, outcome.layer, outcome.code) == ("crashed", "budget", "over_budget")
    assert outcome.reason is not None
    assert outcome.reason.startswith("train() returned after ")
    assert outcome.reason.endswith(
        "s, over the budget of 3s (+0.5s tolerance): the grace is for shutting down, not for training"
    )
    returned_after = float(outcome.reason.removeprefix("train() returned after ").split("s,")[0])
    # The figure is the supervisor's clock, from reading train()'s start event to reading its end:
    # on a loaded machine it reads the start a little late, so the figure can fall short of the
    # sleep by that much; what it must do is exceed the limit it is judged by.
    assert BUDGET_S + over_budget_tolerance(BUDGET_S) <= returned_after < BUDGET_S + spec.grace_s  # (shown to 0.01 s)
    assert "val_bpb" not in outcome.metrics


# --- what the variant prints and reports -------------------------------------------------------


def test_printed_fake_metrics_change_nothing(tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor) -> None:
    source = (
        UNIFORM_MODULE
        + """
def train(ctx):
    print('{"event": "train_finished", "steps": 1}')
    print('{"event": "eval_finished"}')
    print("---\\nstatus: ok\\nval_bpb: 0.100000", flush=True)
    return Uniform(ctx.vocab_size)
"""
    )
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == ("ok", None, None, None)
    assert outcome.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-6)
    assert outcome.metrics["steps"] == 0
    assert "val_bpb: 0.100000" in outcome.log_tail  # it did print the fake lines


def test_progress_events_arrive_in_order(tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor) -> None:
    source = (
        UNIFORM_MODULE
        + """
def train(ctx):
    ctx.report(step=1, loss=2.5)
    ctx.report(step=2, loss=2.25)  # within the throttle window: held back, sent when train() returns
    return Uniform(ctx.vocab_size)
"""
    )
    seen: list[Progress] = []
    outcome = run_variant(tmp_path, track, executor, source, on_progress=seen.append)

    assert outcome.status == "ok"
    assert [(p.phase, p.step, p.loss) for p in seen] == [
        ("training", None, None),
        ("training", 1, 2.5),
        ("training", 2, 2.25),
        ("evaluating", 2, None),
    ]
    assert {p.time_budget_s for p in seen} == {BUDGET_S}
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    assert outcome.metrics["steps"] == 2


def test_a_step_past_the_largest_reportable_is_refused_in_the_variant(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    source = """
    def train(ctx):
        ctx.report(step=2**64, loss=1.0)
    """
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == (
        "crashed",
        "harness",
        "variant_crashed",
        "train() raised ValueError at train.py:3 in train: ctx.report(step=...) takes a whole number"
        " from 0 to 9007199254740991, not 18446744073709551616",
    )


@pytest.mark.parametrize(
    ("use", "line"),
    [("next(self.ctx.batches(2))", 12), ("self.ctx.report(step=99, loss=1.0)", 12)],
    ids=["batches", "report"],
)
def test_ctx_is_revoked_when_train_returns(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor, use: str, line: int
) -> None:
    source = f"""
    import torch


    class Keeper(torch.nn.Module):
        def __init__(self, ctx):
            super().__init__()
            self.ctx = ctx
            self.logit = torch.nn.Parameter(torch.zeros(ctx.vocab_size))

        def forward(self, idx):
            {use}  # more training data, or more steps, after the budget
            return self.logit.expand(*idx.shape, -1)


    def train(ctx):
        return Keeper(ctx)
    """
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == (
        "crashed",
        "harness",
        "variant_crashed",
        f"evaluation raised ContextRevoked at train.py:{line} in forward:"
        " ctx was revoked when train() returned: training is over",
    )


# --- logits and evaluation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "code", "reason"),
    [
        (
            "return self.logit.expand(*idx.shape, -1)[..., :-1]",
            "output_shape",
            "probe output_shape: logits have shape (8, 64, 255); expected (8, 64, 256) = (batch, seq_len, vocab_size)",
        ),
        (
            "return torch.zeros(*idx.shape, 256, dtype=torch.int64)",
            "output_dtype",
            "probe output_dtype: logits have dtype torch.int64; expected a floating-point dtype",
        ),
        (
            "return self.logit.expand(*idx.shape, -1) * float('nan')",
            "finite_logits",
            "probe finite_logits: logits contain non-finite values (NaN or inf), the first at"
            " (row, position, token) (0, 0, 0)",
        ),
        ("return (self.logit,)", "output_shape", "probe output_shape: model returned tuple, not a tensor of logits"),
    ],
    ids=["wrong-shape", "integer-dtype", "nan", "not-a-tensor"],
)
def test_logits_breaking_the_contract_are_rejected_by_a_probe(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor, forward: str, code: str, reason: str
) -> None:
    source = f"""
    import torch


    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.logit = torch.nn.Parameter(torch.zeros(256))

        def forward(self, idx):
            {forward}


    def train(ctx):
        return Broken()
    """
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == ("rejected", "probe", code, reason)
    assert "val_bpb" not in outcome.metrics


def test_model_raising_during_evaluation_is_crashed(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    source = """
    import torch


    class Fragile(torch.nn.Module):
        def forward(self, idx):
            raise RuntimeError("expected a GPU")


    def train(ctx):
        return Fragile()
    """
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == (
        "crashed",
        "harness",
        "variant_crashed",
        "evaluation raised RuntimeError at train.py:7 in forward: expected a GPU",
    )


OVERRIDES_TRAIN = """
    def train(self, mode=True):
        if not mode:
            print("the switch to eval mode ran the override", flush=True)
        return super().train(mode)
"""
OVERRIDES_EVAL = """
    def eval(self):
        print("the switch to eval mode ran the override", flush=True)
        return super().eval()
"""


@pytest.mark.parametrize(
    ("override", "method", "enforce_policy"),
    # The policy refuses a method named `eval` (it would hide the builtin), so that one runs past it.
    [(OVERRIDES_TRAIN, "train", True), (OVERRIDES_EVAL, "eval", False)],
    ids=["train-mode", "eval"],
)
def test_a_model_overriding_the_mode_switch_is_refused_without_the_override_being_called(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor, override: str, method: str, enforce_policy: bool
) -> None:
    # An override would be training time off the clock: the host switches modes itself, never through it.
    source = f"""
import torch


class Sly(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))
{override}
    def forward(self, idx):
        return self.logit.expand(*idx.shape, -1)


def train(ctx):
    return Sly(ctx.vocab_size)
"""
    outcome = run_variant(tmp_path, track, executor, source, enforce_policy=enforce_policy)

    assert decided(outcome) == (
        "rejected",
        "harness",
        "contract_violation",
        f"Sly overrides nn.Module.{method}(): the harness switches the model to eval mode itself,"
        " so a model may not override train() or eval()",
    )
    assert "the switch to eval mode ran the override" not in outcome.log_tail


def test_an_honest_variant_that_asks_for_tf32_matmuls_is_scored(
    tmp_path: Path, track: tuple[TrackSpec, Path], executor: Executor
) -> None:
    source = (
        UNIFORM_MODULE
        + """
def train(ctx):
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    return Uniform(ctx.vocab_size)
"""
    )
    outcome = run_variant(tmp_path, track, executor, source)

    assert decided(outcome) == ("ok", None, None, None), outcome.reason
    assert outcome.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-6)


def test_val_shard_is_neither_open_nor_mapped_nor_reachable_while_training(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, _ = track
    source = UNIFORM_MODULE + textwrap.dedent(f"""
    import os

    VAL = {spec.assets.val!r}
    TRAIN = {spec.assets.train[0]!r}


    def reachable_strings(obj, depth=0, seen=None):
        seen = set() if seen is None else seen
        if depth > 6 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, (str, os.PathLike)):
            yield os.fspath(obj)
            return
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else []
        for child in [*children, *getattr(obj, "__dict__", {{}}).values()]:
            yield from reachable_strings(child, depth + 1, seen)


    def open_files():
        for fd in os.listdir("/proc/self/fd"):
            try:
                yield os.readlink(f"/proc/self/fd/{{fd}}")
            except OSError:
                pass  # the fd listdir itself used, closed by now


    def train(ctx):
        opened = list(open_files())
        with open("/proc/self/maps") as maps:
            mapped = maps.read()
        strings = list(reachable_strings(ctx))
        # The same checks do see a train shard, so they would see the val shard if it were there.
        assert TRAIN in mapped and any(TRAIN in s for s in strings), "the checks are blind"
        assert not any(VAL in f for f in opened), "val shard is open"
        assert VAL not in mapped, "val shard is mapped"
        assert not any(VAL in s for s in strings), "val shard is reachable from ctx"
        return Uniform(ctx.vocab_size)
    """)
    # Without the guard, which would refuse `import os` before the variant could look.
    unguarded = Executor.detect(device="cpu", threads=1, config=SandboxConfig(guard=False))

    outcome = run_variant(tmp_path, track, unguarded, source, enforce_policy=False)

    assert decided(outcome) == ("ok", None, None, None), outcome.log_tail


# --- by hand: python -m worker.execution -------------------------------------------------------


def run_by_hand(folder: Path, data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "worker.execution", "--train-py", str(folder / "train.py")]
    command += ["--spec", str(folder / "spec.json"), "--data-dir", str(data_dir), "--seed", "1"]
    command += ["--device", "cpu", "--threads", "1", "--workdir", str(folder / "run"), *extra]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180, check=False)


def test_running_by_hand_prints_the_summary_block_and_exits_0(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, data_dir = track
    (tmp_path / "spec.json").write_text(spec.dumps())
    (tmp_path / "train.py").write_text(UNIFORM_MODEL)

    done = run_by_hand(tmp_path, data_dir)

    assert done.returncode == 0, done.stdout + done.stderr
    block = done.stdout[done.stdout.index("---\n") :].splitlines()
    assert block[:2] == ["---", "status: ok"]
    assert [line.split(":")[0] for line in block[2:]] == [
        "eval_seconds", "num_params", "peak_memory_bytes", "steps", "tokens", "train_seconds", "val_bpb", "val_loss",
    ]  # fmt: skip
    assert block[-2:] == ["val_bpb: 8.000000", "val_loss: 5.545177"]
    assert (tmp_path / "run" / "harness.log").is_file()


def test_running_by_hand_exits_1_with_the_layer_code_and_reason_of_a_refused_run(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, data_dir = track
    (tmp_path / "spec.json").write_text(spec.dumps())
    (tmp_path / "train.py").write_text("import subprocess\n\n\ndef train(ctx):\n    subprocess.run(['id'])\n")

    done = run_by_hand(tmp_path, data_dir)

    assert done.returncode == 1, done.stdout + done.stderr
    block = done.stdout[done.stdout.index("---\n") :].splitlines()
    assert block[:4] == ["---", "status: rejected", "layer: policy", "code: import_not_allowed"]
    assert block[4].startswith(
        "reason: the static policy refused train.py: line 1: import_not_allowed: `subprocess` is not on the"
        " import allowlist"
    )
    assert len(block) == 5  # no metrics: nothing ran
    assert not (tmp_path / "run").exists()


def test_running_by_hand_with_an_unreadable_spec_is_one_line_and_exit_2(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    _, data_dir = track
    (tmp_path / "train.py").write_text(UNIFORM_MODEL)

    done = run_by_hand(tmp_path, data_dir)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: [Errno 2] No such file or directory: '{tmp_path / 'spec.json'}'\n"
