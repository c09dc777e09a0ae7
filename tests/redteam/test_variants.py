"""Every red-team variant in variants/, run down the path a lease takes, is stopped at the layer
and with the stable code asserted here; the honest variants pass the policy and every probe.

Layers and codes are shared.run_codes': `policy` (the static policy; no process is started),
`guard` (the run-time guard in the variant's process), `sandbox` (limits around the run),
`budget` (the supervisor's and the scorer's clocks), `probe` (the scorer's integrity probes and
output checks), `report` (fields the variant's process reported) and `harness` (the variant
crashed or broke the contract). The variants of test_escapes.py and test_metric_attacks.py are
asserted there; this file holds the older ones and checks that no variant file goes unasserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redteam import test_behind_the_policy, test_escapes, test_metric_attacks
from tests.redteam.conftest import (
    POLICY,
    UNIFORM_BPB,
    VARIANTS,
    Case,
    Runs,
    Track,
    assert_no_score,
    decided,
    policy_verdict,
    run_case,
    variant,
)

ALLOWLIST = (
    " is not on the import allowlist (abc, collections, contextlib, copy, dataclasses, enum, functools, itertools,"
    " math, numbers, numpy, operator, random, statistics, time, torch, triton, typing, warnings, shared.kernels)"
)
# variant file -> what the policy says of it: "line N: code: message", in full
REFUSED_BY_POLICY = {
    "read_val_shard": "line 8: forbidden_call: call to open() is not allowed: it opens files; training data"
    " comes only through ctx.batches",
    "read_any_file": "line 7: io_access: `numpy.load` reads files",
    "open_socket": "line 2: import_not_allowed: `socket`" + ALLOWLIST,
    "open_url": "line 2: import_not_allowed: `urllib.request`" + ALLOWLIST,
    "spawn_process": "line 2: import_not_allowed: `subprocess`" + ALLOWLIST,
    "monkeypatch_cross_entropy": "line 20: module_monkeypatch: assigning to `torch.nn.functional.cross_entropy`"
    " would change it for the whole process, the harness's evaluation included",
    "monkeypatch_harness": "line 3: harness_access: `worker.execution.plan` is the worker that runs the harness",
    "harness_via_sys_modules": "line 2: harness_access: `sys` reaches the interpreter (sys.modules, frames) and"
    " through it the harness",
    "harness_via_gc": "line 2: harness_access: `gc` finds every live object, the harness's included",
    "exec_string": "line 8: forbidden_call: call to exec() is not allowed: it runs code built from strings",
    "eval_string": "line 6: forbidden_call: call to eval() is not allowed: it runs code built from strings",
    "dunder_import": "line 6: forbidden_call: call to __import__() is not allowed: it imports modules by name,"
    " around the import allowlist",
    "dunder_subclasses": "line 6: dunder_access: the dunder attribute `__bases__` is not allowed; dunders reach"
    " interpreter internals (super().__init__ is the one exception)",
    "getattr_dunder": "line 7: forbidden_call: getattr() needs a literal attribute name; a computed one could"
    " reach anything",
    "ctypes_memory": "line 2: native_code: `ctypes` loads native libraries and reads raw memory",
    "load_inline": "line 3: native_code: `torch.utils.cpp_extension` compiles and loads C++/CUDA extensions",
    "fork_bomb": "line 2: import_not_allowed: `os`" + ALLOWLIST,
    "write_outside_scratch": "line 8: forbidden_call: call to open() is not allowed: it opens files; training"
    " data comes only through ctx.batches",
    "torch_save_outside": "line 7: io_access: `torch.save` writes files",
}

# variant file -> (status, layer, codes it may stop with, what the reason says)
STOPPED_BEHIND_THE_POLICY = {
    "non_causal_attention": ("rejected", "probe", {"causality"}, "probe causality: logits at position "),
    # Windows are dealt into rows at random, so the next row's first token is no longer a target;
    # the row read changes whenever the window is asked again beside other rows.
    "peek_next_row": ("rejected", "probe", {"statelessness", "causality"}, "probe "),
    "adapt_buffer": ("rejected", "probe", {"checksum"}, "probe checksum: buffer counts changed during evaluation"),
    "adapt_hook": ("rejected", "probe", {"statelessness"}, "probe statelessness: a window scored again gave loss"),
    "random_in_eval": ("rejected", "probe", {"statelessness"}, "probe statelessness: a window scored again gave loss"),
    "nan_logits": (
        "rejected", "probe", {"finite_logits"}, "probe finite_logits: logits contain non-finite values (NaN or inf)",
    ),
    "wrong_shape": (
        "rejected", "probe", {"output_shape"},
        "probe output_shape: logits have shape (8, 63, 256); expected (8, 64, 256) = (batch, seq_len, vocab_size)",
    ),
    "budget_overrun": ("crashed", "budget", {"budget_exceeded"}, "exceeded time budget (1.5s + 1s grace)"),
    "infinite_loop": ("crashed", "budget", {"budget_exceeded"}, "exceeded time budget (1.5s + 1s grace)"),
    "memory_bomb": ("crashed", "sandbox", {"out_of_memory"}, "out of memory (the sandbox caps memory at "),
}  # fmt: skip

HONEST = ["uniform", "honest_causal_attention", "honest_dropout", "baseline"]

CASES = {name: Case(name) for name in [*STOPPED_BEHIND_THE_POLICY, *HONEST, "fake_metric_line"]}


def test_every_variant_file_is_asserted_somewhere() -> None:
    files = {path.stem for path in VARIANTS.glob("*.py")}
    covered = {
        *REFUSED_BY_POLICY,
        *STOPPED_BEHIND_THE_POLICY,
        *HONEST,
        "fake_metric_line",
        *(
            case.variant
            for module in (test_behind_the_policy, test_escapes, test_metric_attacks)
            for case in module.CASES.values()
            if case.generate is None
        ),
    }
    assert files == covered - {"baseline"}


@pytest.mark.parametrize("name", sorted(REFUSED_BY_POLICY))
def test_the_policy_refuses_it_and_no_process_starts(tmp_path: Path, track: Track, name: str) -> None:
    result = run_case(Case(name), tmp_path, track)

    expected = POLICY + REFUSED_BY_POLICY[name]
    assert decided(result.outcome) == ("rejected", "policy", REFUSED_BY_POLICY[name].split(": ")[1])
    assert result.outcome.reason is not None
    # The first violation in full, and how many more there are.
    assert result.outcome.reason == expected or result.outcome.reason.startswith(expected + " (and "), (
        result.outcome.reason
    )
    assert result.outcome.metrics == {}
    assert not (result.scratch / "train.py").exists()  # nothing was written for a process to run
    assert not (result.scratch / "harness.log").exists()


def test_a_huge_source_file_is_refused_before_it_is_parsed(tmp_path: Path, track: Track) -> None:
    padding = "# " + "x" * 1000 + "\n"

    result = run_case(Case("uniform", edit=lambda source, *_: source + padding * 300), tmp_path, track)

    assert decided(result.outcome) == ("rejected", "policy", "too_large")
    assert result.outcome.reason is not None
    assert result.outcome.reason.startswith(POLICY + "line 1: too_large: ")
    assert not (result.scratch / "train.py").exists()


@pytest.mark.parametrize("case", sorted(STOPPED_BEHIND_THE_POLICY))
def test_what_passes_the_policy_is_stopped_by_the_asserted_layer(runs: Runs, case: str) -> None:
    status, layer, codes, reason = STOPPED_BEHIND_THE_POLICY[case]
    assert policy_verdict(variant(case)) is None

    outcome = runs[case].outcome

    assert (outcome.status, outcome.layer) == (status, layer), outcome.log_tail
    assert outcome.code in codes, outcome.reason
    assert outcome.reason is not None and reason in outcome.reason, outcome.reason
    assert_no_score(outcome)


@pytest.mark.parametrize("case", ["fake_metric_line"])
def test_a_printed_fake_metric_is_ignored_and_the_scorer_stands(runs: Runs, case: str) -> None:
    assert policy_verdict(variant(case)) is None

    run = runs[case]

    assert decided(run.outcome) == ("ok", None, None), run.outcome.log_tail
    assert run.outcome.metrics["val_bpb"] == pytest.approx(UNIFORM_BPB, abs=1e-6)
    assert "val_bpb: 0.100000" in run.log()


@pytest.mark.parametrize("case", HONEST)
def test_honest_variants_pass_the_policy_and_every_probe(runs: Runs, case: str) -> None:
    assert policy_verdict(variant(case)) is None

    outcome = runs[case].outcome

    assert (outcome.status, outcome.layer, outcome.code, outcome.reason) == ("ok", None, None, None), (
        outcome.log_tail
    )
    assert 0 < outcome.metrics["val_bpb"] <= UNIFORM_BPB + 1e-6
    assert outcome.metrics["num_params"] > 0
