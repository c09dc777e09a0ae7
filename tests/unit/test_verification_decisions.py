"""The verification decisions on constructed scores: calibration, disagreement, the quorum verdict."""

from __future__ import annotations

import math

import pytest

from coordinator.services.verification import (
    Calibration,
    Reference,
    Score,
    Verdict,
    calibrate,
    disagreement,
    noise_margin,
    quorum_verdict,
)

PUBLIC_ONLY = Reference(val_bpb=1.00)
WITH_POOL = Reference(val_bpb=1.00, holdout_bpb=1.015)


# --- calibration ------------------------------------------------------------------------------


def test_calibration_of_a_track_without_a_pool_measures_noise_on_public_scores() -> None:
    calibration = calibrate([Score(1.00), Score(1.02)])
    assert calibration == Calibration(val_bpb=pytest.approx(1.01), holdout_bpb=None,
                                      noise_sigma=pytest.approx(0.0141421, abs=1e-6))


def test_calibration_with_held_out_scores_keeps_both_means_and_measures_noise_on_held_out() -> None:
    calibration = calibrate([Score(1.00, 1.10), Score(1.00, 1.16)])
    assert calibration == Calibration(val_bpb=1.00, holdout_bpb=pytest.approx(1.13),
                                      noise_sigma=pytest.approx(0.0424264, abs=1e-6))


def test_one_calibration_run_sets_the_references_but_not_the_noise() -> None:
    assert calibrate([Score(1.00, 1.10)]) == Calibration(val_bpb=1.00, holdout_bpb=1.10, noise_sigma=None)
    assert calibrate([]) is None


# --- one verify run ---------------------------------------------------------------------------


def test_the_shift_is_the_heads_held_out_minus_public_mean_and_0_when_unknown() -> None:
    assert WITH_POOL.shift == pytest.approx(0.015)
    assert PUBLIC_ONLY.shift == 0.0
    assert Reference(val_bpb=None, holdout_bpb=1.1).shift == 0.0


def test_a_run_that_reproduces_both_scores_agrees() -> None:
    assert disagreement(Score(0.93, 0.95), claimed=0.90, reference=WITH_POOL, tolerance=0.05) is None


def test_a_public_score_off_the_claim_is_not_reproduced_as_before() -> None:
    assert disagreement(Score(0.99, 1.0), claimed=0.50, reference=WITH_POOL, tolerance=0.01) == (
        "not reproduced: a verifier measured 0.9900 against the claimed 0.5000 (tolerance 0.0100)"
    )


def test_a_held_out_score_off_the_claim_plus_the_shift_is_not_reproduced_on_held_out_text() -> None:
    assert disagreement(Score(0.1312, 4.0213), claimed=0.1312, reference=WITH_POOL, tolerance=0.1) == (
        "not reproduced on held-out text: a verifier measured 4.0213 against 0.1312 claimed"
        " (+0.0150 public→held-out shift; tolerance 0.1000)"
    )


def test_the_held_out_check_allows_for_the_shift() -> None:
    # 0.99 is 0.09 above the claim but only 0.075 above claim + shift.
    assert disagreement(Score(0.90, 0.99), claimed=0.90, reference=WITH_POOL, tolerance=0.08) is None
    assert disagreement(Score(0.90, 0.99), claimed=0.90, reference=PUBLIC_ONLY, tolerance=0.08) == (
        "not reproduced on held-out text: a verifier measured 0.9900 against 0.9000 claimed"
        " (+0.0000 public→held-out shift; tolerance 0.0800)"
    )


def test_a_run_without_a_held_out_score_is_judged_on_public_val_only() -> None:
    assert disagreement(Score(0.90), claimed=0.90, reference=WITH_POOL, tolerance=0.01) is None


# --- the quorum -------------------------------------------------------------------------------


def test_promotion_compares_held_out_means_when_both_sides_have_them() -> None:
    reference = Reference(val_bpb=1.00, holdout_bpb=1.10)
    verdict = quorum_verdict([Score(0.92, 1.02), Score(0.94, 1.04)], reference=reference, noise_sigma=0.01)
    assert verdict == Verdict(promoted=True, val_bpb=pytest.approx(0.93), holdout_bpb=pytest.approx(1.03), reason=None)


def test_a_public_gain_that_does_not_hold_on_held_out_text_is_not_promoted() -> None:
    reference = Reference(val_bpb=1.00, holdout_bpb=1.10)
    verdict = quorum_verdict([Score(0.90, 1.09), Score(0.90, 1.09)], reference=reference, noise_sigma=0.01)
    assert verdict == Verdict(
        promoted=False, val_bpb=0.90, holdout_bpb=1.09,
        reason="no significant improvement on held-out text: verifiers' mean 1.0900 vs head 1.1000"
               " (needs to beat it by 0.0141)",
    )


def test_without_held_out_scores_promotion_compares_public_means_as_before() -> None:
    assert quorum_verdict([Score(0.92)], reference=PUBLIC_ONLY, noise_sigma=None) == Verdict(
        promoted=True, val_bpb=0.92, holdout_bpb=None, reason=None
    )
    assert quorum_verdict([Score(1.00)], reference=PUBLIC_ONLY, noise_sigma=0.0282843) == Verdict(
        promoted=False, val_bpb=1.00, holdout_bpb=None,
        reason="no significant improvement: verifiers' mean 1.0000 vs head 1.0000 (needs to beat it by 0.0566)",
    )


def test_a_head_without_a_held_out_reference_is_compared_in_public() -> None:
    verdict = quorum_verdict([Score(0.95, 2.0)], reference=PUBLIC_ONLY, noise_sigma=None)
    assert (verdict.promoted, verdict.val_bpb, verdict.holdout_bpb) == (True, 0.95, 2.0)


def test_held_out_means_need_every_verifier_to_have_one() -> None:
    reference = Reference(val_bpb=1.00, holdout_bpb=1.10)
    verdict = quorum_verdict([Score(0.95, 1.50), Score(0.95)], reference=reference, noise_sigma=None)
    assert (verdict.promoted, verdict.holdout_bpb) == (True, None)


def test_an_unmeasured_head_promotes_nothing() -> None:
    verdict = quorum_verdict([Score(0.5)], reference=Reference(val_bpb=None), noise_sigma=None)
    assert verdict.promoted is False
    assert verdict.reason == "no significant improvement: verifiers' mean 0.5000 vs head nan (needs to beat it by 0.0000)"


def test_the_noise_margin_is_two_sigma_over_root_n() -> None:
    assert noise_margin(0.03, 4) == pytest.approx(0.03)
    assert noise_margin(None, 4) == 0.0
    assert math.isclose(noise_margin(0.01, 2), 2 * 0.01 / math.sqrt(2))
