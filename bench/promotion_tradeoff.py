"""The promotion policy's trade-off, by Monte Carlo on the real decision code: false promotions,
power and the verification share, over the claim margin, for a given noise.

Each trial is one explored change of true gain g (in σ_seed): the explorer's paired claim clears
the claim margin or not; a candidate is then verified by honest verifiers, one paired run each,
through `coordinator.services.verdicts.judge` until it decides. Noise: a run's seed noise σ_seed,
of which a shared seed cancels `--shared-fraction` of the variance (bench/RESULTS.md measures
0.21 on cpu-tiny), so one paired difference has σ_p = σ_seed·√(2(1 - f)).

    python bench/promotion_tradeoff.py --shared-fraction 0.21 --margins 0.5 1 1.5 2 2.5

Per margin it prints: the share of no-effect changes that become candidates, the chance such a
candidate is promoted and of such a change overall, the power on 1σ and 2σ gains (claim passed and
promoted), the verify runs a no-effect candidate costs, and the share of all training runs spent
verifying when `--null-share` of explored changes have no effect and the rest are harmful
(never candidates). `--saboteurs` makes a share of the verify runs report the candidate
`--sabotage` σ_p worse than measured, `--rubber-stamps` a share confirm the claimed gain whatever
it is; `--one-word-rejects` judges as the code did before a rejection resting on one run far worse
than the rest waited for one more verifier.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from coordinator.services.verdicts import Decision, PairedRun, Rules, judge


def verify(
    gain_p: float, claim_p: float, rules: Rules, rng: random.Random, args: argparse.Namespace
) -> tuple[bool, int]:
    """(promoted, paired verify runs) for one candidate of true gain gain_p (σ_p units)."""
    runs: list[PairedRun] = []
    while True:
        draw = rng.random()
        if draw < args.rubber_stamps:
            diff = rng.gauss(-claim_p, 0.3)  # confirms the claim, trained or not
        else:
            diff = rng.gauss(-gain_p, 1.0) + (args.sabotage if draw < args.rubber_stamps + args.saboteurs else 0.0)
        runs.append(PairedRun(str(len(runs)), len(runs), False, diff))
        verdict = judge(runs, claimed_gain=claim_p, rules=rules, disputable=not args.one_word_rejects)
        if verdict.decision is not Decision.wait:
            return verdict.decision is Decision.promote, len(runs)


def row(margin: float, args: argparse.Namespace, rng: random.Random) -> dict[str, float]:
    sigma_p = math.sqrt(2.0 * (1.0 - args.shared_fraction))  # in σ_seed
    rules = Rules(noise_sigma=1.0, quorum=args.quorum, max_runs=args.max_verifications, tolerance=0.0)
    result: dict[str, float] = {"margin": margin}
    for label, gain in (("null", 0.0), ("1sigma", 1.0), ("2sigma", 2.0)):
        gain_p = gain / sigma_p
        candidates = promoted = verify_runs = 0
        for _ in range(args.trials):
            claim_p = gain_p + rng.gauss(0.0, 1.0)
            if claim_p <= margin:
                continue
            candidates += 1
            won, runs = verify(gain_p, claim_p, rules, rng, args)
            promoted += won
            verify_runs += runs
        result[f"{label}_candidate_rate"] = candidates / args.trials
        result[f"{label}_promoted"] = promoted / args.trials
        result[f"{label}_promoted_given_candidate"] = promoted / candidates if candidates else 0.0
        result[f"{label}_verify_runs_per_candidate"] = verify_runs / candidates if candidates else 0.0
    # Training runs per explore: 1 for the child (references amortised over 16 explores: 1/16),
    # plus 2 per paired verify run of the candidates it makes.
    verify_trainings = args.null_share * result["null_candidate_rate"] * 2 * result["null_verify_runs_per_candidate"]
    result["verification_share"] = verify_trainings / (1.0 + 1.0 / 16 + verify_trainings)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-fraction", type=float, default=0.21)
    parser.add_argument("--margins", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 2.5])
    parser.add_argument("--quorum", type=int, default=2)
    parser.add_argument("--max-verifications", type=int, default=8)
    parser.add_argument("--null-share", type=float, default=1.0, help="share of explored changes with no effect")
    parser.add_argument("--saboteurs", type=float, default=0.0,
                        help="share of verify runs by saboteurs, each reporting --sabotage σ_p worse")  # fmt: skip
    parser.add_argument("--sabotage", type=float, default=5.0)
    parser.add_argument("--rubber-stamps", type=float, default=0.0,
                        help="share of verify runs by rubber stamps, each confirming the claimed gain")  # fmt: skip
    parser.add_argument("--one-word-rejects", action="store_true",
                        help="reject on one run far worse than the rest, as before the rule against it")  # fmt: skip
    parser.add_argument("--trials", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    sigma_p = math.sqrt(2.0 * (1.0 - args.shared_fraction))
    print(f"shared fraction {args.shared_fraction}: σ_p = {sigma_p:.3f} σ_seed; quorum {args.quorum},"
          f" at most {args.max_verifications} verify runs; {args.trials} trials per cell"
          + (f"; {args.saboteurs:.0%} of verify runs {args.sabotage:g} σ_p worse" if args.saboteurs else "")
          + (f"; {args.rubber_stamps:.0%} of verify runs confirm the claim" if args.rubber_stamps else "")
          + ("; one run far worse than the rest can reject" if args.one_word_rejects else ""))  # fmt: skip
    header = ("margin(σ_p)", "null→cand", "P(promote|null cand)", "null promoted", "power 1σ", "power 2σ",
              "verify runs/null cand", "verify share")  # fmt: skip
    print("  ".join(f"{h:>12}" for h in header))
    for margin in args.margins:
        r = row(margin, args, rng)
        cells = (r["margin"], r["null_candidate_rate"], r["null_promoted_given_candidate"], r["null_promoted"],
                 r["1sigma_promoted"], r["2sigma_promoted"], r["null_verify_runs_per_candidate"],
                 r["verification_share"])  # fmt: skip
        print("  ".join(f"{c:>12.4f}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
