"""How fast the spot checks' records catch a lazy worker, and how often they blame an honest one,
by Monte Carlo on the real record code (`coordinator.services.verdicts`: report_excess,
next_report_bias, record_alarms with OWN_RESULTS_ALARM).

Each trial is one worker's career of spot checks of its negative results, in σ_p (the σ of one
paired difference). A change is harmful with probability `--harmful`, by `--harm` σ_p, and has no
effect otherwise. An honest reporter reports the change's effect plus noise; a lazy one reports
noise around its parent, having trained nothing. Each check is another account's paired re-run:
honest, or, with probability `--saboteurs`, a saboteur's, `--sabotage` σ_p worse than measured (it
frames the reporter). The reporter's record of reporting its own results better takes the check's
excess over the report, as `services/verification._record_spot_check` does.

    python bench/spot_check_records.py --harmful 0.2 0.5 0.8 --saboteurs 0 0.1

Per row it prints the share of lazy and of honest workers quarantined within `--checks` checks,
and the median number of checks a lazy worker takes to be quarantined.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from coordinator.services.verdicts import OWN_RESULTS_ALARM, next_report_bias, record_alarms, report_excess


def checks_to_alarm(lazy: bool, harmful: float, saboteurs: float, args: argparse.Namespace, rng: random.Random) -> int | None:
    """The check at which the reporter's record passes its bound, or None within the career."""
    record = 0.0
    for check in range(1, args.checks + 1):
        effect = args.harm if rng.random() < harmful else 0.0
        reported = rng.gauss(0.0, 1.0) if lazy else effect + rng.gauss(0.0, 1.0)
        measured = effect + rng.gauss(0.0, 1.0) + (args.sabotage if rng.random() < saboteurs else 0.0)
        record = next_report_bias(record, report_excess(measured, [reported], 1.0))
        if record_alarms(record, OWN_RESULTS_ALARM):
            return check
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--harmful", type=float, nargs="+", default=[0.2, 0.5, 0.8], help="share of changes that harm")
    parser.add_argument("--harm", type=float, default=4.0, help="how much a harmful change harms, in σ_p")
    parser.add_argument("--saboteurs", type=float, nargs="+", default=[0.0, 0.1], help="share of checks by saboteurs")
    parser.add_argument("--sabotage", type=float, default=5.0, help="how much worse a saboteur reports, in σ_p")
    parser.add_argument("--checks", type=int, default=300, help="spot checks in a worker's career")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(f"harm {args.harm:g}σ_p, saboteurs {args.sabotage:g}σ_p worse, {args.checks} checks, {args.trials} trials")
    print("harmful  saboteurs  lazy caught  median checks  honest blamed")
    for harmful in args.harmful:
        for saboteurs in args.saboteurs:
            lazy = [checks_to_alarm(True, harmful, saboteurs, args, rng) for _ in range(args.trials)]
            honest = [checks_to_alarm(False, harmful, saboteurs, args, rng) for _ in range(args.trials)]
            caught = [n for n in lazy if n is not None]
            median = f"{statistics.median(caught):g}" if caught else "-"
            blamed = sum(n is not None for n in honest) / len(honest)
            print(f"{harmful:7.2f}  {saboteurs:9.2f}  {len(caught) / len(lazy):11.3f}  {median:>13}  {blamed:13.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
