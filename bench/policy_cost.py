"""What the static policy (shared/policy) costs per train.py.

The coordinator checks every explored variant in the request that delivers it, and the worker
checks every proposal before it trains it: the check sits on the hot path of both. This times
`check_source` on the baseline in a fresh process (nothing cached yet), on baseline-sized explores
(one constant changed each, as a long-running coordinator sees them), and on the red-team variants
(tests/redteam/variants: small sources full of odd paths).

    python bench/policy_cost.py                 # 10 rounds
    python bench/policy_cost.py --rounds 5 --json

Figures depend on the machine and its load; run it alone.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.policy import check_source  # noqa: E402

BASELINE = ROOT / "baseline" / "train.py"
VARIANTS = ROOT / "tests" / "redteam" / "variants"


def timed(source: str) -> float:
    started = time.perf_counter()
    check_source(source)
    return (time.perf_counter() - started) * 1000


def explores(baseline: str, count: int) -> list[str]:
    """Baseline-sized variants as explores deliver them: one constant changed each."""
    numbers = [m for m in re.finditer(r"^([A-Z_]+) = (\d+)", baseline, flags=re.MULTILINE)]
    changed = []
    for index in range(count):
        match = numbers[index % len(numbers)]
        value = f"{match.group(1)} = {int(match.group(2)) + 1 + index // len(numbers)}"
        changed.append(baseline[: match.start()] + value + baseline[match.end() :])
    return changed


def measure(baseline: str, variants: list[str], *, rounds: int) -> dict[str, Any]:
    cold = timed(baseline)  # the first check in this process: nothing cached
    changed = explores(baseline, 20)
    warm = [timed(source) for _ in range(rounds) for source in changed]
    red_team = [statistics.median(timed(source) for _ in range(rounds)) for source in variants]
    return {
        "baseline_cold_ms": cold,
        "explore_median_ms": statistics.median(warm),
        "explore_best_ms": min(warm),
        "explores_checked": len(warm),
        "red_team_sources": len(variants),
        "red_team_median_ms": statistics.median(red_team),
        "red_team_max_ms": max(red_team),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds over every source")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the lines")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    baseline = BASELINE.read_text(encoding="utf-8")
    variants = [path.read_text(encoding="utf-8") for path in sorted(VARIANTS.rglob("*.py"))]
    figures = measure(baseline, variants, rounds=args.rounds)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"baseline, first check in the process: {figures['baseline_cold_ms']:.1f} ms")
    print(
        f"baseline-sized explores (one constant changed), {figures['explores_checked']} checks:"
        f" median {figures['explore_median_ms']:.1f} ms, best {figures['explore_best_ms']:.1f} ms"
    )
    print(
        f"red-team variants, {figures['red_team_sources']} sources:"
        f" median {figures['red_team_median_ms']:.1f} ms, slowest {figures['red_team_max_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
