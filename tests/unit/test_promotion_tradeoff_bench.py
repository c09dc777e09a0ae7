"""bench/promotion_tradeoff.py: the Monte Carlo runs the real decision code, and its adversaries
move the figures the way RESULTS.md reads them."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

from bench.promotion_tradeoff import row

ROOT = Path(__file__).resolve().parents[2]


def settings(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = dict(
        shared_fraction=0.21, quorum=2, max_verifications=8, null_share=1.0, trials=6000,
        saboteurs=0.0, sabotage=5.0, rubber_stamps=0.0, one_word_rejects=False,
    )  # fmt: skip
    values.update(overrides)
    return argparse.Namespace(**values)


def test_saboteurs_sink_fewer_gains_where_one_run_far_worse_than_the_rest_cannot_reject() -> None:
    before = row(1.0, settings(saboteurs=0.2, one_word_rejects=True), random.Random(5))
    after = row(1.0, settings(saboteurs=0.2), random.Random(5))
    # 0.40 against 0.47 at 20,000 trials; the standard error of each is under 0.01 here.
    assert after["2sigma_promoted"] - before["2sigma_promoted"] > 0.03
    assert max(before["null_promoted_given_candidate"], after["null_promoted_given_candidate"]) < 0.01


def test_a_cap_of_sixteen_verify_runs_finds_more_real_gains_than_eight_at_almost_no_cost() -> None:
    eight = row(1.0, settings(max_verifications=8), random.Random(7))
    sixteen = row(1.0, settings(max_verifications=16), random.Random(7))
    # 0.61 against 0.69 at 20,000 trials: the gains the cap of eight rejected undecided.
    assert sixteen["2sigma_promoted"] - eight["2sigma_promoted"] > 0.04
    # A no-effect candidate is rejected long before either cap: about three runs each way.
    assert abs(sixteen["null_verify_runs_per_candidate"] - eight["null_verify_runs_per_candidate"]) < 0.25
    assert max(eight["null_promoted_given_candidate"], sixteen["null_promoted_given_candidate"]) < 0.01


def test_it_prints_its_settings_and_one_row_per_margin() -> None:
    result = subprocess.run(
        [sys.executable, "bench/promotion_tradeoff.py", "--trials", "300", "--margins", "1", "2",
         "--saboteurs", "0.1", "--rubber-stamps", "0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    settings_line, header, *rows = result.stdout.splitlines()
    assert "10% of verify runs 5 σ_p worse; 10% of verify runs confirm the claim" in settings_line
    assert header.split()[0] == "margin(σ_p)"
    assert [float(line.split()[0]) for line in rows] == [1.0, 2.0]
