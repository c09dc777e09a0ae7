"""bench/policy_cost.py: it times the policy on the sources it names, and each of them passes or
fails the policy as the test suite says it does (a bench that timed a refusal at line 1 would
measure nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.policy_cost import BASELINE, explores
from shared.policy import check_source

ROOT = Path(__file__).resolve().parents[2]


def test_the_explores_it_times_are_full_variants_that_pass_and_differ_from_the_baseline() -> None:
    baseline = BASELINE.read_text(encoding="utf-8")
    changed = explores(baseline, 20)
    assert len(set(changed)) == 20 and baseline not in changed
    for source in changed:
        assert check_source(source).ok
        assert abs(len(source) - len(baseline)) < 8  # one constant, not a truncated file


def test_it_prints_every_figure_as_json() -> None:
    result = subprocess.run(
        [sys.executable, "bench/policy_cost.py", "--rounds", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    figures = json.loads(result.stdout)
    assert figures["explores_checked"] == 20
    assert figures["red_team_sources"] == len(list((ROOT / "tests" / "redteam" / "variants").rglob("*.py")))
    assert 0 < figures["explore_best_ms"] <= figures["explore_median_ms"]
    assert 0 < figures["red_team_median_ms"] <= figures["red_team_max_ms"]
