"""The promotion statistics on constructed paired runs: exact decisions and exact reasons."""

from __future__ import annotations

import math
import random

import pytest

from coordinator.services.verdicts import (
    DESIGN_GAIN_SIGMAS,
    FALSE_PROMOTION_RATE,
    LOG_PROMOTE,
    LOG_REJECT,
    REPORT_BIAS_ALARM,
    Audit,
    Decision,
    PairedRun,
    Rules,
    audit_outcome,
    hid_gain,
    is_candidate,
    judge,
    log_likelihood_ratio,
    next_report_bias,
    one_vote_per_account,
    pooled_sigma,
    record_alarms,
    report_comparisons,
    report_excess,
    within_sum_squares,
)

SIGMA = 0.01
RULES = Rules(noise_sigma=SIGMA, quorum=2, max_runs=6, tolerance=0.02)


def run(account: int, diff: float, *, trusted: bool = False, worker: str | None = None) -> PairedRun:
    return PairedRun(worker_id=worker or f"w{account}", account_id=account, trusted=trusted, diff=diff)


# --- the sequential test ----------------------------------------------------------------------


def test_the_bounds_are_walds_for_the_stated_rates() -> None:
    assert math.isclose(LOG_PROMOTE, math.log(400))
    assert math.isclose(LOG_REJECT, math.log(0.2 / 0.9975))
    # Two runs at the design gain each are evidence of exactly 2 * θ² / 2 = θ² nats.
    assert log_likelihood_ratio([-DESIGN_GAIN_SIGMAS * SIGMA] * 2, SIGMA) == pytest.approx(DESIGN_GAIN_SIGMAS**2)


def test_a_clear_gain_from_two_accounts_is_promoted_with_the_verifiers_mean() -> None:
    verdict = judge([run(1, -0.03), run(2, -0.04)], claimed_gain=0.04, rules=RULES)
    assert verdict.decision is Decision.promote
    assert verdict.gain == pytest.approx(0.035)
    assert (verdict.awaiting, verdict.reason, verdict.claim_refuted, verdict.outliers) == (0, None, False, ())


def test_one_account_is_never_a_quorum_however_many_machines_it_has() -> None:
    runs = [run(1, -0.05, worker="a1"), run(1, -0.05, worker="a2"), run(1, -0.05, worker="a3")]
    assert [r.worker_id for r in one_vote_per_account(runs)] == ["a1"]
    verdict = judge(runs, claimed_gain=0.05, rules=RULES)
    assert (verdict.decision, verdict.awaiting, verdict.reason) == (
        Decision.wait, 1, "awaiting 1 more verification(s) from other accounts"
    )


def test_no_gain_is_rejected_early_without_blaming_an_honest_author() -> None:
    verdict = judge([run(1, 0.002), run(2, -0.001)], claimed_gain=0.015, rules=RULES)
    assert verdict.decision is Decision.reject
    assert verdict.claim_refuted is False
    assert verdict.reason == "no significant improvement: verifiers measured a gain of -0.0005 over 2 paired runs (σ 0.0100)"


def test_a_clear_loss_measured_by_trusted_verifiers_of_two_accounts_is_rejected_before_the_quorum() -> None:
    three = Rules(noise_sigma=SIGMA, quorum=3, max_runs=6, tolerance=0.02)
    verdict = judge([run(1, 0.004, trusted=True), run(2, 0.002, trusted=True)], claimed_gain=0.015, rules=three)
    assert (verdict.decision, verdict.claim_refuted) == (Decision.reject, False)
    assert verdict.reason == "no significant improvement: verifiers measured a gain of -0.0030 over 2 paired runs (σ 0.0100)"
    # One trusted account's run waits for the quorum (a farmed streak must not sink a gain alone),
    # as do the same runs with an untrusted one among them, and any gain.
    lone = judge([run(1, 0.004, trusted=True)], claimed_gain=0.015, rules=RULES)
    assert (lone.decision, lone.reason) == (Decision.wait, "awaiting 1 more verification(s) from other accounts")
    assert judge([run(1, 0.004, trusted=True), run(2, 0.002)], claimed_gain=0.015, rules=three).decision is Decision.wait
    assert judge([run(1, -0.05, trusted=True), run(2, -0.05, trusted=True)], claimed_gain=0.05,
                 rules=three).decision is Decision.wait  # fmt: skip


def test_an_ambiguous_gain_asks_for_one_more_run_then_stops_at_the_cap() -> None:
    ambiguous = [run(1, -0.012), run(2, -0.008)]  # evidence 1.5*2 - 2.25 = 0.75 nats: between the bounds
    verdict = judge(ambiguous, claimed_gain=0.012, rules=RULES)
    assert (verdict.decision, verdict.awaiting) == (Decision.wait, 1)
    assert verdict.reason == "undecided after 2 paired runs (gain 0.0100); one more is needed"
    capped = judge(ambiguous, claimed_gain=0.012, rules=Rules(noise_sigma=SIGMA, quorum=2, max_runs=2, tolerance=0.02))
    assert capped.decision is Decision.reject
    assert capped.reason == "not significant after 2 paired runs: a gain of 0.0100 (σ 0.0100)"


def test_a_claim_far_beyond_the_measured_gain_is_refuted() -> None:
    verdict = judge([run(1, 0.0), run(2, 0.001)], claimed_gain=0.30, rules=RULES)
    assert verdict.decision is Decision.reject and verdict.claim_refuted
    assert verdict.reason == (
        "claim not reproduced: claimed a gain of 0.3000, verifiers measured -0.0005 (allowed shortfall 0.0429)"
    )


def test_verifiers_that_confirm_far_more_than_was_claimed_are_not_believed() -> None:
    stamps = [run(1, -0.30), run(2, -0.30)]  # two rubber stamps on an honest claim of 0.015
    verdict = judge(stamps, claimed_gain=0.015, rules=RULES)
    assert (verdict.decision, verdict.awaiting) == (Decision.wait, 1)
    assert verdict.reason == "verifiers measured far more than the 0.0150 claimed; one more is needed"
    # Honest verifiers outvote them: the stamps are set aside and the claim is judged on the rest.
    honest = [run(3, -0.025), run(4, -0.03), run(5, -0.028)]
    verdict = judge([*stamps, *honest], claimed_gain=0.025, rules=RULES)
    assert set(verdict.outliers) == set(stamps)
    assert verdict.decision is Decision.promote
    assert (verdict.counted_credited, verdict.outliers_blamed) == (True, False)  # no trusted anchor: nobody blamed


def test_a_consensus_far_above_the_claim_earns_nobody_trust_and_blames_nobody() -> None:
    # Two rubber stamps outnumber the honest verifier of an honest claim: the median is theirs.
    stamps, honest = [run(1, -0.30), run(2, -0.30)], run(3, -0.012)
    verdict = judge([*stamps, honest], claimed_gain=0.015, rules=RULES)
    assert (verdict.decision, verdict.outliers, verdict.counted_credited) == (Decision.wait, (honest,), False)
    capped = judge([*stamps, honest], claimed_gain=0.015, rules=Rules(noise_sigma=SIGMA, quorum=2, max_runs=2, tolerance=0.02))
    assert capped.decision is Decision.reject
    assert capped.reason == "verifiers measured a gain of 0.3000, far above the 0.0150 claimed: not trusted either way"
    assert (capped.counted_credited, capped.outliers_blamed) == (False, False)


def test_an_untrusted_majority_sets_a_lone_dissenter_aside_without_blaming_it() -> None:
    # A ring backs a fake claim of 0.30 and outvotes the one honest verifier: the numbers alone
    # cannot tell who lied, so the honest run costs its worker nothing (the audit settles it).
    ring, honest = [run(1, -0.30), run(2, -0.29)], run(3, 0.001)
    verdict = judge([*ring, honest], claimed_gain=0.30, rules=RULES)
    assert (verdict.decision, verdict.outliers, verdict.outliers_blamed) == (Decision.promote, (honest,), False)


def test_a_quorum_far_below_the_claim_refutes_it_even_when_the_test_is_undecided() -> None:
    # One run at no gain is not enough to reject "a small gain"; it is enough to refute a claim of 1.5.
    verdict = judge([run(1, 0.0)], claimed_gain=1.5, rules=Rules(noise_sigma=SIGMA, quorum=1, max_runs=6, tolerance=0.5))
    assert (verdict.decision, verdict.claim_refuted) == (Decision.reject, True)
    assert verdict.reason == (
        "claim not reproduced: claimed a gain of 1.5000, verifiers measured 0.0000 (allowed shortfall 0.5000)"
    )


def test_the_tolerance_is_the_least_shortfall_that_refutes() -> None:
    loose = Rules(noise_sigma=SIGMA, quorum=2, max_runs=6, tolerance=0.5)
    assert judge([run(1, 0.0), run(2, 0.001)], claimed_gain=0.30, rules=loose).claim_refuted is False


def test_two_untrusted_verifiers_that_disagree_wait_for_a_third_which_sets_the_outlier_aside() -> None:
    honest, stamp = run(1, 0.0), run(2, -0.30)  # a rubber stamp confirms a fake gain of 0.30
    verdict = judge([honest, stamp], claimed_gain=0.30, rules=RULES)
    assert (verdict.decision, verdict.awaiting, verdict.reason) == (
        Decision.wait, 1, "the two verifiers disagree by more than noise allows; a third decides"
    )
    third = run(3, 0.003)
    verdict = judge([honest, stamp, third], claimed_gain=0.30, rules=RULES)
    assert verdict.outliers == (stamp,)
    assert verdict.counted == (honest, third)
    assert verdict.decision is Decision.reject and verdict.claim_refuted
    assert verdict.outliers_blamed is False  # set aside by an untrusted median: it costs the stamp nothing


def test_a_trusted_verifier_anchors_the_quorum_against_a_ring() -> None:
    ring = [run(2, -0.30), run(3, -0.30)]
    trusted = run(4, 0.0, trusted=True)
    verdict = judge([*ring, trusted], claimed_gain=0.30, rules=RULES)
    assert set(verdict.outliers) == set(ring)
    # The honest verifier alone is below the quorum: nothing is promoted, the ring is exposed.
    assert (verdict.decision, verdict.awaiting) == (Decision.wait, 1)
    decided = judge([*ring, trusted, run(5, 0.002)], claimed_gain=0.30, rules=RULES)
    assert (decided.decision, set(decided.outliers), decided.outliers_blamed) == (Decision.reject, set(ring), True)


def test_where_the_track_has_trusted_workers_a_quorum_needs_one() -> None:
    rules = Rules(noise_sigma=SIGMA, quorum=2, max_runs=6, tolerance=0.02, need_trusted=True)
    verdict = judge([run(1, -0.05), run(2, -0.05)], claimed_gain=0.05, rules=rules)
    assert (verdict.decision, verdict.reason) == (Decision.wait, "awaiting a verification from a trusted worker")
    assert judge([run(1, -0.05), run(2, -0.05, trusted=True)], claimed_gain=0.05, rules=rules).decision is Decision.promote


def test_the_false_promotion_rate_holds_on_a_null_landscape_and_gains_of_two_sigma_are_found() -> None:
    rng = random.Random(20261202)
    rules = Rules(noise_sigma=1.0, quorum=2, max_runs=8, tolerance=math.inf)

    def promoted(gain: float) -> bool:
        runs: list[PairedRun] = []
        while True:
            runs.append(run(len(runs), rng.gauss(-gain, 1.0)))
            verdict = judge(runs, claimed_gain=None, rules=rules)
            if verdict.decision is not Decision.wait:
                return verdict.decision is Decision.promote

    trials = 4000
    assert sum(promoted(0.0) for _ in range(trials)) / trials <= FALSE_PROMOTION_RATE
    assert sum(promoted(2.0) for _ in range(trials)) / trials >= 0.95


# --- claims and noise -------------------------------------------------------------------------


def test_a_claim_becomes_a_candidate_only_beyond_its_margin() -> None:
    assert is_candidate(0.011, noise_sigma=SIGMA, margin_sigmas=1.0)
    assert not is_candidate(0.010, noise_sigma=SIGMA, margin_sigmas=1.0)
    assert not is_candidate(None, noise_sigma=SIGMA, margin_sigmas=1.0)
    assert not is_candidate(math.nan, noise_sigma=SIGMA, margin_sigmas=1.0)


def test_a_claim_one_verifier_sinks_is_refuted_but_costs_its_author_nothing() -> None:
    # An honest claim of 0.05; one verifier measures 0.02 of it, another reports 0.01 worse than
    # the head, 0.03 from the first: inside noise (the lone-dissent limit is 0.0354). Together they
    # refute the claim (0.045 short, allowed 0.0429), but without the worse run the other alone does
    # not (0.03 short, allowed 0.0495): the candidate is rejected and its author keeps its trust.
    verdict = judge([run(1, -0.02), run(2, 0.01)], claimed_gain=0.05, rules=RULES)
    assert (verdict.decision, verdict.claim_refuted, verdict.claim_blamed) == (Decision.reject, True, False)
    # A liar's claim is refuted by any one honest verifier: it pays.
    verdict = judge([run(1, 0.0), run(2, 0.001)], claimed_gain=0.30, rules=RULES)
    assert (verdict.decision, verdict.claim_refuted, verdict.claim_blamed) == (Decision.reject, True, True)


def test_one_run_far_worse_than_the_rest_does_not_reject_alone_and_one_more_verification_decides() -> None:
    # A saboteur reports a real gain 0.045 worse than the honest verifier measured it: inside the
    # outlier limit (0.0495), beyond the lone-dissent limit (2.5σ·√2 = 0.0354). Without that run
    # there is no quorum, so nothing is decided on its word.
    honest, saboteur = run(1, -0.02), run(2, 0.025)
    verdict = judge([honest, saboteur], claimed_gain=0.025, rules=RULES)
    assert (verdict.decision, verdict.awaiting, verdict.counted) == (Decision.wait, 1, (honest, saboteur))
    assert verdict.reason == (
        "the rejection rests on one run far worse than the rest measured (+0.0250); one more verification decides"
    )
    # Where the runs without it reject as well, it is rejected on all of them.
    runs = [run(1, 0.001), run(2, 0.04), run(3, -0.002)]
    verdict = judge(runs, claimed_gain=0.015, rules=RULES)
    assert (verdict.decision, verdict.outliers) == (Decision.reject, ())
    assert verdict.reason == "no significant improvement: verifiers measured a gain of -0.0130 over 3 paired runs (σ 0.0100)"
    # At the cap nobody is left to ask.
    capped = Rules(noise_sigma=SIGMA, quorum=2, max_runs=2, tolerance=0.02)
    assert judge([honest, saboteur], claimed_gain=0.025, rules=capped).decision is Decision.reject


def test_a_lone_trusted_run_far_worse_than_the_claim_waits_for_the_quorum() -> None:
    # One trusted run 0.03 worse than the head against a claim of 0.02: one account's word against
    # another's (a saboteur's run on an honest claim, or an honest run on a liar's), so the quorum decides.
    verdict = judge([run(1, 0.03, trusted=True)], claimed_gain=0.02, rules=RULES)
    assert (verdict.decision, verdict.awaiting) == (Decision.wait, 1)
    # Before the quorum, two trusted accounts can reject early, unless one run is far worse than
    # the other and the other alone would not reject (alone, it is one account's run again).
    three = Rules(noise_sigma=SIGMA, quorum=3, max_runs=6, tolerance=0.02)
    far = judge([run(1, 0.05, trusted=True), run(2, -0.015, trusted=True)], claimed_gain=0.02, rules=three)
    assert (far.decision, far.awaiting) == (Decision.wait, 1)
    assert far.reason == (
        "the rejection rests on one run far worse than the rest measured (+0.0500); one more verification decides"
    )
    # A track of quorum 1 takes its one verifier's word.
    single = Rules(noise_sigma=SIGMA, quorum=1, max_runs=6, tolerance=0.02)
    assert judge([run(1, 0.03, trusted=True)], claimed_gain=0.02, rules=single).decision is Decision.reject


def test_a_negative_result_hid_a_gain_when_its_verifiers_measured_far_more_than_it_claimed() -> None:
    # The allowance is the refuted claim's, mirrored: 3.5σ·√(1 + 1/n), at least the tolerance.
    allowance = 3.5 * SIGMA * math.sqrt(1.5)
    assert hid_gain(-0.05, 0.10, noise_sigma=SIGMA, verifiers=2, tolerance=0.02)
    assert hid_gain(-0.01, -0.01 + allowance + 1e-9, noise_sigma=SIGMA, verifiers=2, tolerance=0.02)
    assert not hid_gain(-0.01, -0.01 + allowance - 1e-9, noise_sigma=SIGMA, verifiers=2, tolerance=0.02)
    assert not hid_gain(-0.01, 0.03, noise_sigma=SIGMA, verifiers=2, tolerance=0.05)  # within the tolerance
    assert not hid_gain(None, 0.10, noise_sigma=SIGMA, verifiers=2, tolerance=0.02)
    assert not hid_gain(-0.05, None, noise_sigma=SIGMA, verifiers=2, tolerance=0.02)


def test_sigma_is_pooled_from_the_tracks_history_with_the_configured_value_as_prior() -> None:
    assert pooled_sigma(0.01, sum_squares=0.0, df=0) == pytest.approx(0.01)
    # 30 df measured at σ 0.012 against 10 prior df at 0.01: sqrt((10e-4 + 30 * 1.44e-4) / 40).
    assert pooled_sigma(0.01, sum_squares=30 * 0.012**2, df=30) == pytest.approx(math.sqrt((1e-3 + 30 * 1.44e-4) / 40))
    # However wild or tame the history, σ stays within 1.25x of the configured value.
    assert pooled_sigma(0.01, sum_squares=100 * 1.0, df=100) == pytest.approx(0.0125)
    assert pooled_sigma(0.01, sum_squares=0.0, df=1000) == pytest.approx(0.008)
    assert within_sum_squares([1.0, 3.0]) == (2.0, 1)
    assert within_sum_squares([1.0]) == (0.0, 0)


def test_without_a_trusted_run_an_even_split_is_no_majority_and_waits() -> None:
    # Two honest runs and two confirmations of a fake: no group is a majority, so none is counted.
    honest, stamps = [run(1, 0.001), run(2, -0.002)], [run(3, -0.30), run(4, -0.30)]
    verdict = judge([*honest, *stamps], claimed_gain=0.30, rules=RULES)
    assert (verdict.decision, verdict.awaiting, verdict.counted) == (Decision.wait, 1, ())
    assert verdict.reason == "the 4 verifiers split into groups that disagree by more than noise allows; one more decides"
    settled = judge([*honest, *stamps, run(5, 0.0)], claimed_gain=0.30, rules=RULES)
    assert (settled.decision, settled.claim_refuted, set(settled.outliers)) == (Decision.reject, True, set(stamps))
    capped = Rules(noise_sigma=SIGMA, quorum=2, max_runs=4, tolerance=0.02)
    verdict = judge([*honest, *stamps], claimed_gain=0.30, rules=capped)
    assert (verdict.decision, verdict.reason) == (Decision.reject, "not reproduced: 4 verifiers disagree by more than noise allows")


# --- reporting others' work worse ---------------------------------------------------------------


def test_a_reports_excess_is_in_sigma_of_its_difference_from_the_others_mean_and_clipped() -> None:
    # Against one other run the difference of two runs has σ·√2; against four, σ·√(5/4).
    assert report_excess(0.01, [0.0], SIGMA) == pytest.approx(1 / math.sqrt(2))
    assert report_excess(0.0, [0.01, -0.01, 0.02, -0.02], SIGMA) == pytest.approx(0.0)
    assert report_excess(0.02, [0.0, 0.0, 0.0, 0.0], SIGMA) == pytest.approx(2 / math.sqrt(1.25))
    # A better report counts against the record; no one run weighs more than 3σ either way.
    assert report_excess(-0.01, [0.0], SIGMA) == pytest.approx(-1 / math.sqrt(2))
    assert report_excess(0.5, [0.0], SIGMA) == 3.0
    assert report_excess(-0.5, [0.0], SIGMA) == -3.0
    with pytest.raises(ValueError, match="at least one other"):
        report_excess(0.0, [], SIGMA)


def test_each_run_of_a_round_is_compared_with_the_other_accounts_consistent_runs() -> None:
    # Two honest runs and a saboteur within noise: all three are consistent, each is compared with
    # the other two (σ·√1.5), and a second machine of one account is no second witness.
    honest, saboteur = [run(1, -0.01), run(2, -0.01)], run(3, 0.03)
    compared = report_comparisons([*honest, saboteur, run(1, 0.5, worker="w1b")], SIGMA)
    assert [(vote.account_id, excess) for vote, excess in compared] == [
        (1, pytest.approx(-2.0 / math.sqrt(1.5))),
        (2, pytest.approx(-2.0 / math.sqrt(1.5))),
        (3, pytest.approx(3.0)),  # 4 / √1.5 = 3.27, clipped
    ]
    # A run set aside is compared with the consistent runs only: a fake confirmation far from the
    # honest pair does not make them look worse.
    stamp = run(4, -0.30)
    compared = dict((vote.account_id, excess) for vote, excess in report_comparisons([*honest, stamp], SIGMA))
    assert compared == {1: pytest.approx(0.0), 2: pytest.approx(0.0), 4: -3.0}
    # Without a majority there is nothing to compare with; one run alone has no other.
    assert report_comparisons([run(1, 0.0), run(2, 0.3)], SIGMA) == []
    assert report_comparisons([run(1, 0.0)], SIGMA) == []


def record_of(excesses: list[float]) -> list[float]:
    bias, record = 0.0, []
    for excess in excesses:
        bias = next_report_bias(bias, excess)
        record.append(bias)
    return record


def test_the_record_is_a_cusum_that_forgets_honest_noise_and_alarms_on_a_steady_bias() -> None:
    assert record_of([2.0, 3.0, -1.0, 0.5, 3.0]) == pytest.approx([1.0, 3.0, 1.0, 0.5, 2.5])
    assert record_of([-3.0, 0.9]) == [0.0, 0.0]  # never below zero: a good past buys no licence
    # A saboteur 5σ of a paired difference worse against one other verifier (3.5σ of the
    # comparison, clipped to 3): shown at the fourth comparison.
    bold = report_excess(0.05, [0.0], SIGMA)
    assert [record_alarms(bias) for bias in record_of([bold] * 4)] == [False, False, False, True]
    # A careful one, 3σ worse (2.1σ of the comparison): at the eighth.
    careful = record_of([report_excess(0.03, [0.0], SIGMA)] * 8)
    assert [record_alarms(bias) for bias in careful] == [False] * 7 + [True]
    assert not record_alarms(REPORT_BIAS_ALARM - 1e-9) and record_alarms(REPORT_BIAS_ALARM)


def test_honest_records_do_not_reach_the_alarm_over_long_careers() -> None:
    # 2,000 honest workers, 300 comparisons each against one to three others, 3% of them outvoted
    # by colluders that confirmed the other way (+3σ, the clip: with a tenth of the verifiers in
    # a ring, two of them beside one honest verifier). At most a few in a thousand are quarantined;
    # a saboteur 5σ worse among them always is, mostly within five comparisons.
    rng = random.Random(20261204)

    def career(bias: float, outvoted: float) -> int | None:
        record = 0.0
        for n in range(1, 301):
            others = [rng.gauss(0.0, SIGMA) for _ in range(rng.randint(1, 3))]
            excess = 3.0 if rng.random() < outvoted else report_excess(rng.gauss(bias, SIGMA), others, SIGMA)
            record = next_report_bias(record, excess)
            if record_alarms(record):
                return n
        return None

    assert sum(career(0.0, 0.0) is not None for _ in range(2000)) == 0
    assert sum(career(0.0, 0.03) is not None for _ in range(2000)) <= 8
    caught = [career(5 * SIGMA, 0.0) for _ in range(200)]
    assert all(n is not None and n <= 8 for n in caught)
    assert sorted(caught)[100] <= 5  # type: ignore[operator]


def test_an_audit_refutes_by_a_strict_majority_of_accounts_and_a_split_asks_for_more() -> None:
    # The verifiers measured a gain of 0.05 over 2 runs; an audit vote refutes below 0.05 - 3.5σ·√1.5.
    limit = 3.5 * SIGMA * math.sqrt(1.5)
    far, near = -0.05 + limit + 0.001, -0.05 + limit - 0.001  # a run's diff: gain far below, and just within
    def outcome(*diffs: float, accounts: tuple[int, ...] | None = None) -> Audit:
        runs = [run(account, diff) for account, diff in zip(accounts or range(1, len(diffs) + 1), diffs, strict=True)]
        return audit_outcome(0.05, runs, noise_sigma=SIGMA, verifiers=2)

    assert outcome(far, far) is Audit.refuted
    assert outcome(near, near) is Audit.upheld
    assert outcome(far) is Audit.undecided  # one vote never decides a revocation
    assert outcome(far, -0.05) is Audit.undecided  # one colluder confirming does not keep a fake...
    assert outcome(far, -0.05, far) is Audit.refuted  # ...a third account decides
    assert outcome(far, -0.05, -0.05) is Audit.undecided  # and one saboteur does not revoke a real gain
    assert outcome(far, far, accounts=(1, 1)) is Audit.undecided  # two machines of one account are one vote
