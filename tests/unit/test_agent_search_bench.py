"""bench/agent_search.py judges every network after the same number of runs, and tests the gap it sees."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "bench" / "agent_search.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_search", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _network(strategy: str, seed: int, verified_deltas: list[float | None]) -> dict[str, Any]:
    verified = [d for d in verified_deltas if d is not None]
    first = next((i + 1 for i, d in enumerate(verified_deltas) if d is not None), None)
    return {
        "strategy": strategy, "seed": seed, "explore": len(verified_deltas), "verify": len(verified),
        "verified": len(verified), "candidates_left": 0, "runs_to_first": first,
        "baseline_val_bpb": 3.0, "best_val_bpb": 3.0 + min(verified) if verified else None,
        "dead": 0, "wall_s": 100.0, "verified_deltas": verified_deltas,
        "best_delta": min(verified) if verified else None,  # written by --json, ignored on reading
    }  # fmt: skip


def test_fisher_tail_matches_the_hypergeometric_counted_by_hand(bench: ModuleType) -> None:
    # One hit in two runs, one run each: the hit is in the first group half the time.
    assert bench.fisher_one_sided(1, 1, 0, 1) == pytest.approx(1 / 2)
    # Two hits in four runs, both in the first group: C(2,2) C(2,0) / C(4,2).
    assert bench.fisher_one_sided(2, 2, 0, 2) == pytest.approx(1 / 6)
    # Five of five against none of five: one arrangement in C(10,5).
    assert bench.fisher_one_sided(5, 5, 0, 5) == pytest.approx(1 / 252)
    # Fewer hits than the other group is no evidence at all of a higher rate.
    assert bench.fisher_one_sided(0, 5, 5, 5) == pytest.approx(1.0)


def test_sign_test_counts_the_binomial_tail_and_is_silent_without_decided_pairs(bench: ModuleType) -> None:
    assert bench.sign_test_one_sided(9, 2) == pytest.approx((55 + 11 + 1) / 2048)
    assert bench.sign_test_one_sided(3, 0) == pytest.approx(1 / 8)
    assert bench.sign_test_one_sided(0, 0) == 1.0


def test_best_delta_after_n_runs_sees_only_those_runs(bench: ModuleType) -> None:
    outcome = bench.Outcome.from_json(_network("guided", 1, [None, -0.1, None, -0.3]))

    assert outcome.best_delta_after(1) == 0.0
    assert outcome.best_delta_after(2) == pytest.approx(-0.1)
    assert outcome.best_delta_after(4) == pytest.approx(-0.3)
    assert outcome.best_delta == pytest.approx(-0.3)


def test_comparison_pairs_seeds_at_the_shortest_networks_horizon(bench: ModuleType) -> None:
    outcomes = [
        bench.Outcome.from_json(network)
        for network in [
            # guided finds its improvement by run 3 on seed 1, random only at run 5: past the horizon.
            _network("random", 1, [None, None, None, None, -0.4]),
            _network("guided", 1, [None, None, -0.2, None]),
            _network("random", 2, [-0.1, None, None, None]),
            _network("guided", 2, [-0.1, None, None, None]),
        ]
    ]

    horizon = bench.common_horizon(outcomes)
    result = bench.compare(outcomes, "guided", "random", horizon=horizon)

    assert horizon == 4
    assert (result.wins, result.losses, result.ties) == (1, 0, 1)
    assert result.sign_p == pytest.approx(1 / 2)
    assert result.rate_p == pytest.approx(bench.fisher_one_sided(2, 8, 2, 9))


def test_pool_tabulates_earlier_reports_together(tmp_path: Path) -> None:
    reports = []
    for number, seed in enumerate((1, 2)):
        path = tmp_path / f"batch{number}.json"
        path.write_text(
            json.dumps(
                {
                    "networks": [
                        _network("random", seed, [None, None, None]),
                        _network("guided", seed, [None, -0.2, None]),
                    ]
                }
            )
        )
        reports.append(str(path))

    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--pool", *reports], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    summary = {line.split()[0]: line.split() for line in result.stdout.splitlines() if " 2 " in line[:20]}
    assert summary["random"][1:4] == ["2", "6", "0"]  # networks, explore runs, verified
    assert summary["guided"][1:4] == ["2", "6", "2"]
    assert (
        "guided against random, one-sided: verified per explore run, Fisher exact p = 0.23;"
        " Δ@3 paired by seed, 2 better, 0 worse, 0 tied, sign test p = 0.25"
    ) in result.stdout


def test_pool_names_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"rows": []}')

    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--pool", str(path)], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1
    assert f"{path}: not a report of this script's --json" in result.stderr
