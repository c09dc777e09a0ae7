"""Arbitrary code in the variant's process, and what it gains there.

(a) **Routes past the static policy**, one of each kind the previous red team found: an exception
that carries the object it was raised on, a library that evaluates string annotations (two), a
functools helper that copies attributes between objects, a torch accessor that hands back a
module, and numpy arrays built over raw bytes. Each is asserted twice: what the policy says of it,
and what its run gives with the policy off (the run-time guard stops the payload, or the process
split leaves it nothing to change).

(b) **Escape payloads**, run with the policy off, each stopped by the guard or by the process
split on its own: the val channel searched for (every descriptor of the process, the shared eval
buffer, the data folder, the scorer's descriptors through /proc); the score rewritten (the
scorer's modules patched in the variant's own process, logits written into the shared buffer
after each answer); the end of training forged on the events pipe, then training on (in a
thread, or in train() itself). A shell command, a file written outside scratch and the val shard
read by its path are test_behind_the_policy.py's.

Also: without bubblewrap, files changed outside scratch without being opened, and the guard's
hook sought out through the garbage collector to disarm it (from a frame that is not train.py's,
by a variant the policy refuses and by one built to pass it): the guard refuses each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redteam.conftest import (
    UNIFORM_BPB,
    Case,
    Runs,
    Track,
    assert_no_score,
    decided,
    policy_verdict,
    set_constant,
    variant,
)
from worker.execution.sandbox import SandboxConfig

# --- (a) routes past the static policy --------------------------------------------------------

# variant -> (the route's kind, (status, layer, code, reason) of its run with the policy off)
ROUTES = {
    "escape_exception_obj": (
        "an AttributeError's `obj` hands back the module it was raised on",
        ("ok", None, None, None),
    ),
    "escape_singledispatch_annotation": (
        "functools.singledispatch evaluates a string annotation",
        ("rejected", "guard", "guard_file", "reading a file this run does not need"),
    ),
    "escape_custom_op_annotation": (
        "torch.library.custom_op evaluates a string annotation",
        ("rejected", "guard", "guard_process", "starting a process (os.system)"),
    ),
    "escape_update_wrapper": (
        "functools.update_wrapper copies a computed dunder between objects",
        ("ok", None, None, None),
    ),
    "escape_device_module": (
        "torch.get_device_module hands back a module, with torch on it",
        ("ok", None, None, None),
    ),
    "escape_numpy_object_array": (
        "numpy object arrays over a bytearray forge references to any address",
        ("rejected", "guard", "guard_process", "starting a process (os.system)"),
    ),
}

# --- (b) escape payloads ----------------------------------------------------------------------

NO_FILESYSTEM = SandboxConfig(filesystem=False)  # bubblewrap missing: the guard is what keeps files safe
NO_GUARD = SandboxConfig(guard=False)  # the process split and the sandbox alone


def victim(source: str, home: Path, track: Track) -> str:
    (home / "outside").mkdir()
    (home / "outside" / "victim").write_text("a file of the volunteer's\n")
    return set_constant(source, "VICTIM", str(home / "outside" / "victim"))


CASES = {
    **{name: Case(name, enforce_policy=False) for name in ROUTES},
    "payload_remove_outside_scratch": Case(
        "payload_remove_outside_scratch", enforce_policy=False, config=NO_FILESYSTEM, edit=victim
    ),
    # With the guard off, to show the process split alone: nothing the host holds leads to the val.
    "payload_scan_descriptors": Case("payload_scan_descriptors", enforce_policy=False, config=NO_GUARD),
    "payload_parent_descriptors": Case("payload_parent_descriptors", enforce_policy=False),
    "payload_parent_descriptors_unguarded": Case(
        "payload_parent_descriptors", enforce_policy=False, config=NO_GUARD
    ),
    "payload_patch_scorer_importlib": Case("payload_patch_scorer_importlib", enforce_policy=False),
    "payload_logits_after_answer": Case("payload_logits_after_answer", enforce_policy=False),
    "forge_train_finished_thread": Case("forge_train_finished_thread", enforce_policy=False),
    "forge_train_finished_early": Case("forge_train_finished_early", enforce_policy=False),
    "guard_disarmed_via_dataclass": Case(
        "guard_disarmed_via_dataclass", enforce_policy=False, config=NO_FILESYSTEM
    ),
    "chain_policy_pass_disarms_guard": Case("chain_policy_pass_disarms_guard", enforce_policy=False),
}

# Payloads that never reach the run's end: (status, layer, codes, what the reason says)
STOPPED = {
    # The guard refuses listing the scorer's descriptors; without the guard, the process split
    # stands: the scorer is non-dumpable, so the kernel keeps /proc/<scorer>/fd (where the val
    # bytes arrive) and its memory from the host.
    "payload_parent_descriptors": (
        "rejected", "guard", {"guard_file"}, "the run-time guard refused listing a folder this run does not need",
    ),
    "payload_parent_descriptors_unguarded": (
        "crashed", "harness", {"variant_crashed"},
        "train() raised PermissionError at train.py:9 in train: [Errno 13] Permission denied: 'fd'",
    ),
    # Patched in the variant's process, the scorer's modules change nothing the scorer runs: the
    # noise they were to let through is caught.
    "payload_patch_scorer_importlib": (
        "rejected", "probe", {"statelessness"}, "probe statelessness: a window scored again gave loss",
    ),
    # Peeking logits written behind the host's answers: some answers are the cheat's, some the
    # model's, and the windows asked twice disagree (or a twin's unchanged prefix moves).
    "payload_logits_after_answer": ("rejected", "probe", {"statelessness", "causality"}, "probe "),
    # A forged `train_finished` only starts the evaluation early: weights changing under it are
    # caught, and a host that trains on in train() has sent no copy of its model by then (the copy
    # goes before the true end of training), which the scorer waits for a few seconds only.
    "forge_train_finished_thread": ("rejected", "probe", {"checksum", "statelessness"}, "probe "),
    "forge_train_finished_early": (
        "rejected", "harness", {"contract_violation"},
        "the variant's process ended training without a whole copy of its model",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("escape_exception_obj", "harness_access"),  # `.obj` on any object
        ("escape_singledispatch_annotation", "forbidden_call"),  # functools.singledispatch
        ("escape_custom_op_annotation", "forbidden_call"),  # an annotation that is not a type
        ("escape_update_wrapper", "forbidden_call"),  # functools.update_wrapper
        ("escape_device_module", "module_monkeypatch"),  # torch.get_device_module
        ("escape_numpy_object_array", "native_code"),  # numpy.ndarray(...) over a bytearray
        ("chain_policy_pass_disarms_guard", "native_code"),  # the same, to reach the builtins
    ],
)
def test_the_policy_refuses_each_route_past_it(name: str, code: str) -> None:
    verdict = policy_verdict(variant(name))

    assert verdict is not None and verdict[0] == code, verdict


@pytest.mark.parametrize("case", sorted(ROUTES))
def test_past_the_policy_each_routes_payload_is_stopped_by_the_guard_or_the_process_split(
    runs: Runs, case: str
) -> None:
    status, layer, code, reason = ROUTES[case][1]

    outcome = runs[case].outcome

    assert decided(outcome) == (status, layer, code), outcome.log_tail
    if status == "ok":
        # A loss patched in the variant's process: the scorer's own gives uniform's true 8 bits.
        assert outcome.metrics["val_bpb"] == pytest.approx(UNIFORM_BPB, abs=1e-6)
    else:
        assert outcome.reason == "the run-time guard refused " + reason
        assert not (runs[case].scratch / "planted").exists()


@pytest.mark.parametrize(
    "name", [c for c in CASES if c not in ROUTES and c != "chain_policy_pass_disarms_guard"]
)
def test_every_payload_is_refused_by_the_policy_first(name: str) -> None:
    verdict = policy_verdict(variant(CASES[name].variant))

    assert verdict is not None and verdict[0] in {"import_not_allowed", "harness_access"}, verdict


@pytest.mark.parametrize("case", sorted(STOPPED))
def test_each_payload_is_stopped_by_the_guard_or_the_process_split_on_its_own(runs: Runs, case: str) -> None:
    status, layer, codes, reason = STOPPED[case]

    outcome = runs[case].outcome

    assert (outcome.status, outcome.layer) == (status, layer), outcome.reason
    assert outcome.code in codes, outcome.reason
    assert outcome.reason is not None and reason in outcome.reason, outcome.reason
    assert_no_score(outcome)


@pytest.mark.parametrize("case", ["payload_scan_descriptors"])
def test_nothing_the_variants_process_holds_leads_to_the_val_shard(runs: Runs, case: str) -> None:
    outcome = runs[case].outcome

    # It read every descriptor (the events and request pipes, the shared eval buffer), and every
    # file of the data folder it can see, looking for the val shard by hash and by its header:
    # it found nothing, so it returned its uniform model, scored at exactly 8 bits per byte.
    assert decided(outcome) == ("ok", None, None), outcome.reason
    assert outcome.metrics["val_bpb"] == pytest.approx(UNIFORM_BPB, abs=1e-6)


@pytest.mark.parametrize("case", ["payload_remove_outside_scratch"])
def test_without_bubblewrap_the_guard_refuses_changing_files_outside_scratch(runs: Runs, case: str) -> None:
    run = runs[case]

    assert (run.home / "outside" / "victim").exists(), decided(run.outcome)
    assert decided(run.outcome) == ("rejected", "guard", "guard_file")


@pytest.mark.parametrize("case", ["guard_disarmed_via_dataclass"])
def test_without_bubblewrap_the_guard_cannot_be_disarmed_to_read_the_val_shard(runs: Runs, case: str) -> None:
    outcome = runs[case].outcome

    # The walk of the garbage collector that led to the hook is refused whoever makes it; the val
    # shard is never read, nothing is scored.
    assert decided(outcome) == ("rejected", "guard", "guard_introspection"), outcome.metrics
    assert "val_bpb" not in outcome.metrics


@pytest.mark.parametrize("case", ["chain_policy_pass_disarms_guard"])
def test_a_variant_the_policy_passes_cannot_disarm_the_guard(runs: Runs, case: str) -> None:
    # Run with the policy off so that this shows the guard alone; the policy's verdict on it is
    # asserted with the routes above.
    outcome = runs[case].outcome

    assert decided(outcome) == ("rejected", "guard", "guard_introspection")
