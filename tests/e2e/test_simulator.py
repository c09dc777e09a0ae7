"""bench/simulate.py in its fast mode: the real coordinator, simulated workers, seconds per run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "simulate.py"


def simulate(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--fast", "--json", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def null_with_liars_and_stamps() -> dict[str, Any]:
    return simulate("--landscape", "null", "--adversary", "liar=0.2", "--adversary", "rubber=0.2", "--seed", "3")


def test_on_a_null_landscape_liars_are_quarantined_and_no_honest_worker_is(
    null_with_liars_and_stamps: dict[str, Any],
) -> None:
    result = null_with_liars_and_stamps
    assert result["candidates_tested"] > 0 and result["runs"] >= 300
    assert result["honest_quarantined"] == 0  # two rubber stamps outvoting one honest verifier cost it nothing
    assert result["adversaries_caught"]["liar"]["quarantined"] >= 1


def test_on_a_null_landscape_a_liar_and_a_rubber_stamp_ring_get_nothing_promoted(
    null_with_liars_and_stamps: dict[str, Any],
) -> None:
    assert null_with_liars_and_stamps["promotions"] == 0  # nothing stands on the leaderboard


def test_on_a_planted_landscape_the_planted_gain_is_promoted() -> None:
    result = simulate("--landscape", "planted", "--gain", "5", "--plant-rate", "0.3", "--seed", "4")
    assert result["planted_promoted"] >= 1
    assert result["false_promotions"] == 0
    assert result["head_true_end"] < result["head_true_start"]
