"""Attacks on the metric itself, most breaking no rule of the static policy: training off the clock,
training past the budget, evading the integrity probes, abusing the fields a run reports, and
memorising the val text; and the honest variants that must pass all of it.

(c) **Off-clock training**: in an eval()/train() override or a `training` property (the harness
switches modes itself and refuses such models), in the first evaluation forward or in later
ones (each forward is timed against the fastest), in a thread left running after train()
returns (ctx is revoked; weights changing under evaluation are caught).
(d) **Over budget**: train() returning inside the grace period, or work done at import time (the
clock starts before the variant is imported): `over_budget`. Never returning (`budget_exceeded`)
is test_variants.py's budget_overrun and infinite_loop; training on after a forged end of
training is test_escapes.py's forge_train_finished_early (`slow_forward`).
(e) **Probe evasion**: memos of whole batches or rows with a cache of the eval text seen so far,
an honest first answer and a cache after it, rows reading each other, a memo of every prefix.
(f) **Reported fields**: numbers out of range, through ctx or forged on the events pipe, and the
text of a file carried out in a reason.
(g) **Honest variants** that earlier layers refused by mistake, and memorisation, which only the
held-out windows of verify and calibrate leases expose.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from shared.data_format import read_tokens
from tests.memorizer import memorizer_source
from tests.redteam.conftest import (
    UNIFORM_BPB,
    Case,
    Runs,
    Track,
    assert_no_score,
    decided,
    holdout_windows,
    policy_verdict,
    variant,
)

GENEROUS_GRACE = (("grace_s", 3.0),)  # room between the over-budget line (2 s) and the kill


def memorize(track: Track, strategy: str = "window") -> str:
    spec, data_dir = track
    return memorizer_source(
        read_tokens(data_dir / spec.assets.val),
        seq_len=spec.seq_len,
        eval_tokens=spec.eval_tokens,
        vocab_size=spec.vocab_size,
        strategy=strategy,
    )


def held_out(track: Track) -> bytes:
    return holdout_windows(16, seq_len=track[0].seq_len)


SECRET = "api-token=7f3a9c2e51d84b06c1e9a0b2d4f68e37"  # in a file the variant can read, in its scratch


def plant_secret(source: str, home: Path, track: Track) -> str:
    (home / "run" / "secret.txt").write_text(f"{SECRET} (and the rest of a volunteer's file)\n")
    return source


CASES = {
    # (c) off-clock training
    "offclock_eval_override": Case("offclock_eval_override", enforce_policy=False),
    "offclock_training_property": Case("offclock_training_property"),
    "offclock_first_forward": Case("offclock_first_forward"),
    "offclock_later_forwards": Case("offclock_later_forwards"),
    "offclock_thread_after_return": Case("offclock_thread_after_return", enforce_policy=False),
    "offclock_thread_keeps_ctx": Case("offclock_thread_keeps_ctx", enforce_policy=False),
    # (d) over budget
    "overbudget_returns_late": Case("overbudget_returns_late", spec=GENEROUS_GRACE),
    "overbudget_at_import": Case("overbudget_at_import", spec=GENEROUS_GRACE),
    # (e) probe evasion
    "evade_batch_memo": Case("evade_batch_memo"),
    "evade_row_memo": Case("evade_row_memo"),
    "evade_first_call": Case("evade_first_call"),
    "evade_batch_statistics": Case("evade_batch_statistics"),
    "evade_prefix_memo_trains_on": Case("evade_prefix_memo_trains_on"),
    # (f) reported fields
    "report_huge_step": Case("report_huge_step"),
    "report_forged_step": Case("report_forged_step", enforce_policy=False),
    "report_crash_reason_text": Case("report_crash_reason_text", enforce_policy=False, edit=plant_secret),
    "report_reason_via_guard": Case("report_reason_via_guard", enforce_policy=False, edit=plant_secret),
    "report_reason_via_forged_event": Case(
        "report_reason_via_forged_event", enforce_policy=False, edit=plant_secret
    ),
    # (g) honest, and memorisation
    "honest_fp32_precision": Case("honest_fp32_precision"),
    "honest_slots": Case("honest_slots"),
    "honest_pair_model": Case("honest_pair_model"),
    "memorizer": Case("memorizer", generate=memorize, holdout=held_out),
    "memorizer_ngram": Case(
        "memorizer_ngram", generate=functools.partial(memorize, strategy="ngram"), holdout=held_out
    ),
    "memorizer_cover": Case(
        "memorizer_cover", generate=functools.partial(memorize, strategy="cover"), holdout=held_out
    ),
}

OVERRIDE = "the harness switches the model to eval mode itself, so a model may not override train() or eval()"
SLOW = "evaluation is not training time"  # every slow_forward reason ends so
OUT_OF_RANGE = "out of range (a whole number from 0 to 9007199254740991)"

# case -> (status, layer, codes it may stop with, what the reason says)
STOPPED = {
    # (c)
    "offclock_eval_override": (
        "rejected", "harness", {"contract_violation"}, f"Bigram overrides nn.Module.eval(): {OVERRIDE}",
    ),
    "offclock_training_property": (
        "rejected", "harness", {"contract_violation"}, "Bigram defines `training` itself; it must be nn.Module's flag",
    ),
    "offclock_first_forward": ("crashed", "budget", {"slow_forward"}, SLOW),
    "offclock_later_forwards": ("crashed", "budget", {"slow_forward"}, SLOW),
    "offclock_thread_after_return": ("rejected", "probe", {"checksum", "statelessness"}, "probe "),
    # (d)
    "overbudget_returns_late": ("crashed", "budget", {"over_budget"}, "train() returned after "),
    "overbudget_at_import": ("crashed", "budget", {"over_budget"}, "train() returned after "),
    # (e)
    "evade_batch_memo": (
        "rejected", "probe", {"statelessness"}, "probe statelessness: a window scored again gave loss",
    ),
    "evade_row_memo": ("rejected", "probe", {"causality"}, "probe causality: logits at position "),
    "evade_first_call": (
        "rejected", "probe", {"statelessness"}, "probe statelessness: a window scored again gave loss",
    ),
    # The row read is another window whenever it is asked again beside other rows.
    "evade_batch_statistics": ("rejected", "probe", {"statelessness", "causality"}, "probe "),
    # (f)
    "report_huge_step": (
        "crashed", "harness", {"variant_crashed"},
        "train() raised ValueError at train.py:6 in train: ctx.report(step=...) takes a whole number from 0 to"
        " 9007199254740991, not 18446744073709551616",
    ),
    "report_forged_step": (
        "rejected", "report", {"report_out_of_range"}, f"the variant reported step {OUT_OF_RANGE}",
    ),
}  # fmt: skip

HONEST = ["honest_fp32_precision", "honest_slots", "honest_pair_model"]


@pytest.mark.parametrize(
    "name", [name for name, case in CASES.items() if case.enforce_policy and case.generate is None]
)
def test_the_attacks_run_with_the_policy_on_break_none_of_its_rules(name: str) -> None:
    assert policy_verdict(variant(CASES[name].variant)) is None


@pytest.mark.parametrize("case", list(STOPPED))
def test_each_attack_is_stopped_at_its_layer_with_its_code(runs: Runs, case: str) -> None:
    status, layer, codes, reason = STOPPED[case]

    outcome = runs[case].outcome

    assert (outcome.status, outcome.layer) == (status, layer), outcome.reason
    assert outcome.code in codes, outcome.reason
    assert outcome.reason is not None and reason in outcome.reason, outcome.reason
    assert_no_score(outcome)


@pytest.mark.parametrize("case", ["offclock_thread_keeps_ctx"])
def test_a_thread_left_running_after_train_gets_no_more_data_and_reports_nothing(
    runs: Runs, case: str
) -> None:
    run = runs[case]

    # ctx is revoked when train() returns: the thread's first batch raises, and its steps never count.
    assert decided(run.outcome) == ("ok", None, None), run.outcome.reason
    assert run.outcome.metrics["val_bpb"] == pytest.approx(UNIFORM_BPB, abs=1e-6)
    assert run.outcome.metrics["steps"] == 0
    assert "ContextRevoked: ctx was revoked when train() returned: training is over" in run.log()


@pytest.mark.parametrize("case", ["overbudget_returns_late", "overbudget_at_import"])
def test_over_budget_is_the_supervisors_measure_from_before_the_import(runs: Runs, case: str) -> None:
    outcome = runs[case].outcome

    # Measured on the supervisor's clock from `train_started`, sent before train.py is imported.
    assert outcome.reason is not None
    assert "s, over the budget of 1.5s (+0.5s tolerance): the grace is for shutting down" in outcome.reason
    assert outcome.metrics["train_seconds"] > 2.0  # budget 1.5 s + the 0.5 s tolerance
    assert outcome.metrics["train_seconds"] < 4.5  # and it was not killed: that is budget + grace


@pytest.mark.parametrize("case", ["evade_prefix_memo_trains_on"])
def test_training_in_every_evaluation_forward_gains_nothing(runs: Runs, case: str) -> None:
    # The same model, the same 100 steps on the clock, the same seed: a deterministic score.
    honest = runs["honest_pair_model"].outcome
    if not honest.ok:
        pytest.fail(f"the honest reference did not score: {honest.reason}")  # not the finding

    outcome = runs[case].outcome

    # It memoises every answer it gave, so no re-asked window moves while it trains on; the fresh
    # copy of the model, loaded from when train() returned, answers its late windows otherwise.
    assert decided(outcome) == ("rejected", "probe", "statelessness"), (outcome.reason, outcome.metrics)
    assert outcome.reason is not None and "a fresh copy of the trained model" in outcome.reason
    assert "val_bpb" not in outcome.metrics


# --- (f) a reason must not carry a file's text off the machine ---------------------------------


def carries_the_secret(reason: str | None) -> bool:
    """Whether any 8 characters in a row of the secret token reach the reason."""
    token = SECRET.split("=", 1)[1]
    return reason is not None and any(token[i : i + 8] in reason for i in range(len(token) - 7))


LEAKS = ["report_crash_reason_text", "report_reason_via_guard", "report_reason_via_forged_event"]


@pytest.mark.parametrize("case", LEAKS)
def test_a_report_never_carries_the_text_of_a_file_the_variant_read(runs: Runs, case: str) -> None:
    # Through a crash message, a path the guard refused, or an event forged with its own reason:
    # what the report carries is what the supervisor vouches for, never text the variant chose.
    outcome = runs[case].outcome

    assert outcome.status != "ok"
    assert not carries_the_secret(outcome.public_reason), outcome.public_reason
    assert outcome.public_reason is not None and outcome.public_reason != outcome.reason


# --- (g) honest variants, and memorisation ----------------------------------------------------


@pytest.mark.parametrize("case", HONEST)
def test_honest_variants_earlier_layers_refused_by_mistake_pass_every_layer(runs: Runs, case: str) -> None:
    outcome = runs[case].outcome

    assert (outcome.status, outcome.layer, outcome.code, outcome.reason) == ("ok", None, None, None), (
        outcome.log_tail
    )
    assert 0 < outcome.metrics["val_bpb"] < UNIFORM_BPB
    assert outcome.metrics["steps"] >= 19  # every step, reported from 0 or from 1


@pytest.mark.parametrize("case", ["memorizer", "memorizer_ngram", "memorizer_cover"])
def test_memorised_val_text_scores_on_the_public_shard_and_not_on_held_out_windows(
    runs: Runs, case: str
) -> None:
    honest = runs["honest_slots"].outcome
    run = runs[case]
    assert policy_verdict(run.source) is None  # it breaks no rule: only held-out text shows it

    outcome = run.outcome

    assert decided(outcome) == ("ok", None, None), outcome.reason
    assert outcome.metrics["val_bpb"] < honest.metrics["val_bpb"] / 2  # it recites the public shard
    # Windows it never saw: the recital is gone (the cover model's unigram is all that is left), a
    # gap no tolerance of the verification lets through (coordinator/services/verification.py).
    assert outcome.metrics["holdout_bpb"] > outcome.metrics["val_bpb"] + 1.0
    if case == "memorizer":
        assert outcome.metrics["holdout_bpb"] >= UNIFORM_BPB - 1e-6
