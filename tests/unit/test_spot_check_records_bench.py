"""bench/spot_check_records.py: the spot checks' record of reporting one's own results better, on the
real record code, catches lazy workers where changes harm and leaves honest ones alone."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

from bench.spot_check_records import checks_to_alarm

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = argparse.Namespace(harm=4.0, sabotage=5.0, checks=300)


def test_a_lazy_worker_is_caught_where_most_changes_harm_and_an_honest_one_never_without_framers() -> None:
    rng = random.Random(3)
    lazy = [checks_to_alarm(True, 0.8, 0.0, SETTINGS, rng) for _ in range(200)]
    honest = [checks_to_alarm(False, 0.8, 0.0, SETTINGS, rng) for _ in range(200)]
    assert all(n is not None and n < 60 for n in lazy)
    assert honest == [None] * 200
    # Where no change has any effect, a lazy report is the truth: nothing to catch.
    assert [checks_to_alarm(True, 0.0, 0.0, SETTINGS, rng) for _ in range(200)] == [None] * 200


def test_it_prints_one_row_per_setting() -> None:
    result = subprocess.run(
        [sys.executable, "bench/spot_check_records.py", "--harmful", "0.5", "0.8", "--saboteurs", "0", "0.1",
         "--trials", "50", "--checks", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    settings_line, header, *rows = result.stdout.splitlines()
    assert settings_line.startswith("harm 4σ_p") and header.split()[0] == "harmful"
    assert [row.split()[:2] for row in rows] == [["0.50", "0.00"], ["0.50", "0.10"], ["0.80", "0.00"], ["0.80", "0.10"]]
