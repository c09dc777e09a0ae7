"""Every red-team variant in variants/, run down the path a lease takes, is stopped at the layer
and with the stable code asserted here; the honest variants pass the policy and every probe.

Layers (worker.localrun): `policy` (static checks, no process is started), `sandbox` (limits on
the harness process), `budget` (the runner's wall-clock kill), `probe` (the harness's integrity
probes and output checks), `harness` (the metric computed outside the variant).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.track_spec import TrackSpec
from tests.redteam.conftest import ROOT, VARIANTS, run_variant, variant

POLICY = "the static policy refused train.py: "

# variant file -> (code, the start of the reason after "the static policy refused train.py: ")
REFUSED_BY_POLICY = {
    "read_val_shard": ("forbidden_call", "line 8: forbidden_call: call to open() is not allowed"),
    "read_any_file": ("io_access", "line 7: io_access: `numpy.load` reads files"),
    "open_socket": ("import_not_allowed", "line 2: import_not_allowed: `socket` is not on the import allowlist"),
    "open_url": ("import_not_allowed", "line 2: import_not_allowed: `urllib.request` is not on the import allowlist"),
    "spawn_process": ("import_not_allowed", "line 2: import_not_allowed: `subprocess` is not on the import allowlist"),
    "monkeypatch_cross_entropy": (
        "module_monkeypatch",
        "line 20: module_monkeypatch: assigning to `torch.nn.functional.cross_entropy` would change it",
    ),
    "monkeypatch_harness": (
        "harness_access", "line 3: harness_access: `worker.harness.evaluate` is the worker that runs the harness",
    ),
    "harness_via_sys_modules": ("harness_access", "line 2: harness_access: `sys` reaches the interpreter"),
    "harness_via_gc": ("harness_access", "line 2: harness_access: `gc` finds every live object"),
    "exec_string": ("forbidden_call", "line 8: forbidden_call: call to exec() is not allowed"),
    "eval_string": ("forbidden_call", "line 6: forbidden_call: call to eval() is not allowed"),
    "dunder_import": ("forbidden_call", "line 6: forbidden_call: call to __import__() is not allowed"),
    "dunder_subclasses": ("dunder_access", "line 6: dunder_access: the dunder attribute `__bases__` is not allowed"),
    "getattr_dunder": ("forbidden_call", "line 7: forbidden_call: getattr() needs a literal attribute name"),
    "ctypes_memory": ("native_code", "line 2: native_code: `ctypes` loads native libraries"),
    "load_inline": ("native_code", "line 3: native_code: `torch.utils.cpp_extension` compiles and loads"),
    "fork_bomb": ("import_not_allowed", "line 2: import_not_allowed: `os` is not on the import allowlist"),
    "write_outside_scratch": ("forbidden_call", "line 8: forbidden_call: call to open() is not allowed"),
    "torch_save_outside": ("io_access", "line 7: io_access: `torch.save` writes files"),
}  # fmt: skip

# variant file -> (layer, code, the start of the reason)
STOPPED_BEHIND_THE_POLICY = {
    "non_causal_attention": ("probe", "causality", "probe causality: logits at position "),
    "peek_next_row": ("probe", "causality", "probe causality: logits at position 63 of row 6 changed when"),
    "adapt_buffer": ("probe", "checksum", "probe checksum: buffer counts changed during evaluation"),
    "adapt_hook": ("probe", "statelessness", "probe statelessness: the first eval batch scored again"),
    "random_in_eval": ("probe", "statelessness", "probe statelessness: the first eval batch scored again"),
    "nan_logits": ("probe", "finite_logits", "probe finite_logits: logits contain non-finite values (NaN or inf)"),
    "wrong_shape": (
        "probe", "output_shape", "probe output_shape: logits have shape (8, 63, 256); expected (8, 64, 256)",
    ),
    "budget_overrun": ("budget", "budget_exceeded", "exceeded time budget (1.5s + 1s grace)"),
    "infinite_loop": ("budget", "budget_exceeded", "exceeded time budget (1.5s + 1s grace)"),
    "memory_bomb": ("sandbox", "out_of_memory", "out of memory (the sandbox caps memory at "),
}  # fmt: skip

HONEST = ["uniform", "honest_causal_attention", "honest_dropout", "baseline"]


def source_of(name: str) -> str:
    return (ROOT / "baseline" / "train.py").read_text() if name == "baseline" else variant(name)


def test_every_variant_file_is_asserted_somewhere() -> None:
    files = {path.stem for path in VARIANTS.glob("*.py")}
    covered = {*REFUSED_BY_POLICY, *STOPPED_BEHIND_THE_POLICY, *HONEST, "fake_metric_line"}
    assert files == covered - {"baseline"}
    assert len(REFUSED_BY_POLICY) + len(STOPPED_BEHIND_THE_POLICY) + 2 >= 20  # + fake line, huge file


@pytest.mark.parametrize("name", sorted(REFUSED_BY_POLICY))
def test_the_policy_refuses_it_and_no_process_starts(
    tmp_path: Path, track: tuple[TrackSpec, Path], name: str
) -> None:
    code, reason = REFUSED_BY_POLICY[name]

    result = run_variant(tmp_path, track, variant(name))

    assert (result.status, result.layer, result.code) == ("rejected", "policy", code)
    assert result.reason is not None and result.reason.startswith(POLICY + reason), result.reason
    assert result.metrics == {}
    assert not (tmp_path / "run" / "harness.log").exists()  # nothing was started for it


def test_a_huge_source_file_is_refused_before_it_is_parsed(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    padding = "# " + "x" * 1000 + "\n"
    source = variant("uniform") + padding * 300  # about 300 KiB of honest-looking comments

    result = run_variant(tmp_path, track, source)

    assert (result.status, result.layer, result.code) == ("rejected", "policy", "too_large")
    assert result.reason is not None and result.reason.startswith(POLICY + "line 1: too_large: ")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", sorted(STOPPED_BEHIND_THE_POLICY))
def test_what_passes_the_policy_is_stopped_by_the_asserted_layer(
    tmp_path: Path, track: tuple[TrackSpec, Path], name: str
) -> None:
    layer, code, reason = STOPPED_BEHIND_THE_POLICY[name]
    assert_passes_policy(name)

    result = run_variant(tmp_path, track, variant(name))

    expected_status = "rejected" if layer == "probe" else "crashed"
    assert (result.status, result.layer, result.code) == (expected_status, layer, code), result.log_tail
    assert result.reason is not None and result.reason.startswith(reason), result.reason
    # No score for a run that was stopped: nothing a cheat did can be read as a result.
    assert "val_bpb" not in result.metrics and "val_loss" not in result.metrics


def test_a_printed_fake_metric_is_ignored_and_the_harness_score_stands(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    assert_passes_policy("fake_metric_line")

    result = run_variant(tmp_path, track, variant("fake_metric_line"))

    assert (result.status, result.layer, result.code) == ("ok", None, None), result.log_tail
    # Uniform logits over 256 one-byte tokens: exactly 8 bits per byte, whatever it printed.
    assert result.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-6)
    assert "val_bpb: 0.100000" in (tmp_path / "run" / "harness.log").read_text()


@pytest.mark.parametrize("name", HONEST)
def test_honest_variants_pass_the_policy_and_every_probe(
    tmp_path: Path, track: tuple[TrackSpec, Path], name: str
) -> None:
    assert_passes_policy(name)

    result = run_variant(tmp_path, track, source_of(name))

    assert (result.status, result.layer, result.code, result.reason) == ("ok", None, None, None), result.log_tail
    assert 0 < result.metrics["val_bpb"] <= 8.0 + 1e-6
    assert result.metrics["num_params"] > 0


def assert_passes_policy(name: str) -> None:
    from shared.policy import check_source

    report = check_source(source_of(name))
    assert report.ok, report.summary()
