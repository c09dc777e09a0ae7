"""Promotion statistics: pure decisions on paired measurements.

A time-budgeted metric measures the machine as well as the variant, so the network never
compares scores from different machines. Every judged number is a **paired difference**: one
machine trains the variant and a reference (the head, or the explore's parent) back to back with
one seed, and on a track with a held-out pool, on one set of held-out windows. The machine's
speed, its load during the pair and the share of seed noise a shared seed cancels all drop out;
what is left has a standard deviation σ (the track's `noise_sigma`), pooled over its history.

- **Claims.** An explore's claimed gain is its parent's score minus its own, both measured by the
  claimant. It becomes a candidate only beyond a margin (`claim_margin` σ), so a change with no
  effect rarely costs verify runs.
- **Verification** is Wald's sequential probability ratio test on the verifiers' differences,
  between "no gain" and "a gain of θ = DESIGN_GAIN_SIGMAS σ". It promotes when the evidence for a
  gain reaches 1/FALSE_PROMOTION_RATE to 1: whatever the stopping, a change with no effect is then
  promoted with probability at most FALSE_PROMOTION_RATE (Wald's bound). It rejects as soon as
  "no gain" is clearly the better explanation, so most null candidates cost two verify runs.
  Promotion needs runs from `quorum` distinct accounts, one vote per account, and at least one
  trusted verifier where the track has one to give; a clear loss measured by trusted verifiers
  of two accounts or more, and nobody else, is rejected before the quorum is complete (one
  account's run never does: trust is earned by verifying, so a ring can farm it).
- **Consistency.** A run far (OUTLIER_SIGMAS) from the trusted verifiers' runs, or without any,
  from a strict majority of runs that agree among themselves, is set aside; runs that split
  without such a majority wait for more, and at the cap the candidate is rejected. Only a trusted
  anchor makes a set-aside run cost its worker trust: two colluding accounts outvote one honest
  verifier, and nobody can tell from the numbers alone which side lied. (A promotion such a
  majority forced is settled by its audit, which blames the verifiers it refutes.) A claim far above what the
  verifiers measured (CLAIM_REFUTED_SIGMAS) costs its author trust
  when it holds without the verifier that measured it worst; verifiers that measured far
  more than the author claimed (over twice, and beyond noise) are not believed either: more
  verifiers are asked, and that consensus earns nobody trust. An honest claim that merely fails
  the test costs nobody anything.
- **One account's word sinks nothing.** A rejection resting on one run far (LONE_DISSENT_SIGMAS)
  worse than the rest measured (before the quorum, than the author claimed) waits for one more
  verification when the runs without it would not reject: a saboteur's run on a real gain is
  then outweighed instead of deciding, and at the cap the candidate is rejected as before.
  Promotion is untouched, so Wald's bound still holds (it holds whenever the test stops).
- **Reporting others' work worse.** A saboteur reports others' candidates worse than they are
  (within noise, one run at a time, if it is careful) and its own finds worse, to hide them. Each
  time others measured the same thing (the other consistent verifiers of a decided candidate, in
  each round of it, one per head it was paired with; a spot check and the result it re-ran), how
  much worse this worker reported is its excess, in σ of that comparison, clipped at
  REPORT_EXCESS_CLIP so that no single run (a load spike, an honest run outvoted by colluders)
  weighs much. A CUSUM of the excesses (Page's test for a shift of REPORT_BIAS_SHIFT) is the
  worker's record: it forgets what honest noise builds up and reaches REPORT_BIAS_ALARM only for
  a worker that reports worse as a rule (after about five comparisons for one 5σ worse, about
  eight for one 3σ worse; of 2,000 honest workers over 300 comparisons each, none without
  colluders beside them, and 0.2% when two colluders outvote them in 3% of their comparisons).
  Only this side is tested: a worker beside a saboteur looks better than its peers through no
  fault of its own, and confirmations that are too good are the claim and audit checks' job. A
  gain a spot check found is judged without its reporter's claim, and `hid_gain` says whether its
  verifiers' measurement makes that claim a hidden find.
- **Reporting its own results better.** A negative result is a claim too: that the change costs
  no more than reported. A lazy worker reports its parent's score, give or take noise, without
  training, and a harmful change then looks harmless. Where a spot check re-ran a result, the
  reporter is tested on both sides: the excess that goes into the checker's record of reporting
  worse goes, the same number, into the reporter's second record, of reporting its own results
  better than another account reproduces them (the same CUSUM). Framing costs the framer as much as
  its victim, and neither side chooses the other: the coordinator draws which result is checked and
  who checks it, so an honest checker meets a given reporter once in a while, while every check of
  a lazy worker's harmful changes counts against it. One check cannot tell a frame from a lazy
  report, so this record's bound is higher, OWN_RESULTS_ALARM: with a tenth of the checks by
  saboteurs 5σ worse, 0.25-0.55% of honest workers reach it within 300 checks (7-9% would at the
  other record's bound); a lazy worker reaches it after a median of 29 checks where half the changes
  are harmful by 4σ of the comparison, 11 where 80% are, and seldom where 20% are (7% within 300).
  A worker with anything on this record is spot-checked at the untrusted rate, however long its
  streak.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

FALSE_PROMOTION_RATE = 0.0025
DESIGN_GAIN_SIGMAS = 1.5
MISSED_GAIN_RATE = 0.2  # the chance of rejecting a gain of θ, which sets the early-rejection bound
LOG_PROMOTE = math.log(1.0 / FALSE_PROMOTION_RATE)
LOG_REJECT = math.log(MISSED_GAIN_RATE / (1.0 - FALSE_PROMOTION_RATE))
OUTLIER_SIGMAS = 3.5  # in σ of the difference of two runs, σ·√2: an honest pair that far apart is rarer than 1 in 2,000
# A rejection resting on one run this far (in σ of the comparison) worse than the rest measured
# waits for one more verification: an honest pair of runs is that far apart about once in 80.
LONE_DISSENT_SIGMAS = 2.5  # below REPORT_EXCESS_CLIP
CLAIM_REFUTED_SIGMAS = 3.5  # in σ of the claim minus the verifiers' mean, σ·√(1 + 1/n)
REPORT_EXCESS_CLIP = 3.0  # in σ of a difference of two measurements of one thing
REPORT_BIAS_SHIFT = 2.0  # the bias the record watches for, in σ of a comparison
REPORT_BIAS_DRIFT = REPORT_BIAS_SHIFT / 2.0  # what each comparison takes off the record
REPORT_BIAS_ALARM = 8.0
# The record of reporting one's own results better has a higher bound: a framing check weighs as
# much as a check of a lazy worker's harmful change (bench/spot_check_records.py).
OWN_RESULTS_ALARM = 12.0
POOLING_PRIOR_DF = 10  # degrees of freedom the track's configured σ counts for against its measured history
POOLING_BOUND = 1.25  # the measured σ stays within this factor of the configured one


class Decision(StrEnum):
    promote = "promote"
    reject = "reject"
    wait = "wait"


@dataclass(frozen=True)
class PairedRun:
    """One verifier's measurement: the candidate's score minus the head's, same machine and seed."""

    worker_id: str
    account_id: int
    trusted: bool
    diff: float


@dataclass(frozen=True)
class Rules:
    noise_sigma: float  # σ of one paired difference
    quorum: int  # distinct accounts before any decision
    max_runs: int  # counted verifications after which an undecided candidate is rejected
    tolerance: float  # the least claim excess that refutes a claim, whatever σ says
    need_trusted: bool = False  # the track has a trusted verifier outside the author's account


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    gain: float | None  # the verifiers' mean gain (head minus candidate); None before any counted run
    counted: tuple[PairedRun, ...]
    outliers: tuple[PairedRun, ...]
    claim_refuted: bool
    awaiting: int  # verifications still needed before the next decision can be taken
    reason: str | None
    outliers_blamed: bool = False  # set aside against trusted runs: each costs its worker trust
    # The claim is refuted even without the counted run that refutes it most: one account's word
    # (a saboteur's run inside noise, say) sinks a claim but does not cost its author trust.
    claim_blamed: bool = False
    counted_credited: bool = True  # each counted verifier earns a valid result when the candidate is decided


def claim_allowance(*, tolerance: float, noise_sigma: float, verifiers: int) -> float:
    """How far the verifiers' mean gain over n runs may be from the claim: the claim is one paired
    run itself, so the two differ by noise of σ·√(1 + 1/n)."""
    return max(tolerance, CLAIM_REFUTED_SIGMAS * noise_sigma * math.sqrt(1.0 + 1.0 / max(1, verifiers)))


def _claim_allowance(rules: Rules, n: int) -> float:
    return claim_allowance(tolerance=rules.tolerance, noise_sigma=rules.noise_sigma, verifiers=n)


def log_likelihood_ratio(diffs: Sequence[float], sigma: float) -> float:
    """log P(diffs | gain θ) / P(diffs | no gain), for normal differences of known σ."""
    theta = DESIGN_GAIN_SIGMAS
    gains = sum(-d for d in diffs) / sigma
    return theta * gains - len(diffs) * theta * theta / 2.0


def one_vote_per_account(runs: Sequence[PairedRun]) -> list[PairedRun]:
    """Each account's first run: two machines of one owner are one witness."""
    seen: set[int] = set()
    votes = []
    for run in runs:
        if run.account_id not in seen:
            seen.add(run.account_id)
            votes.append(run)
    return votes


def _split_outliers(votes: list[PairedRun], sigma: float) -> tuple[list[PairedRun], list[PairedRun], bool] | None:
    """(consistent, outliers, anchored by trusted runs), or None while nobody can tell which runs
    are wrong. Trusted runs are the anchor where there are any. Otherwise the consistent runs are
    the largest group that all lie within noise of each other, once it is a strict majority: two
    untrusted runs that disagree, or two against two, wait for more. (A median would be no anchor:
    between two honest runs and two confirmations of a fake it lies halfway, near enough to both.)"""
    if not votes:
        return [], [], False
    limit = OUTLIER_SIGMAS * sigma * math.sqrt(2.0)
    trusted = [run.diff for run in votes if run.trusted]
    if trusted:
        anchor = statistics.median(trusted)
        consistent = [run for run in votes if abs(run.diff - anchor) <= limit]
        return consistent, [run for run in votes if abs(run.diff - anchor) > limit], True
    ordered = sorted(votes, key=lambda run: run.diff)
    best: list[PairedRun] = []
    for start, low in enumerate(ordered):
        group = [run for run in ordered[start:] if run.diff - low.diff <= limit]
        if len(group) > len(best):
            best = group
    if 2 * len(best) <= len(votes):
        return None
    chosen = {id(run) for run in best}
    return [run for run in votes if id(run) in chosen], [run for run in votes if id(run) not in chosen], False


def judge(runs: Sequence[PairedRun], *, claimed_gain: float | None, rules: Rules, disputable: bool = True) -> Verdict:
    """The decision on a candidate after its verify runs so far (in the order they came).
    `disputable`: whether a rejection resting on one account's word waits for another (False
    when judging the runs without that word)."""
    sigma = rules.noise_sigma
    votes = one_vote_per_account(runs)
    split = _split_outliers(votes, sigma)
    if split is None:
        if len(votes) >= rules.max_runs:
            return Verdict(Decision.reject, None, (), (), False, 0,
                           f"not reproduced: {len(votes)} verifiers disagree by more than noise allows")  # fmt: skip
        reason = (
            "the two verifiers disagree by more than noise allows; a third decides"
            if len(votes) == 2
            else f"the {len(votes)} verifiers split into groups that disagree by more than noise allows; one more decides"
        )
        return Verdict(Decision.wait, None, (), (), False, 1, reason, counted_credited=False)
    counted, outliers, anchored = split
    n = len(counted)
    gain = 0.0 - statistics.fmean(run.diff for run in counted) if counted else None  # never -0.0

    def verdict(decision: Decision, awaiting: int, reason: str | None, *, credited: bool = True) -> Verdict:
        refuted = blamed = False
        if decision is not Decision.wait and claimed_gain is not None and gain is not None:
            allowed = _claim_allowance(rules, n)
            refuted = claimed_gain - gain > allowed
            if refuted:
                reason = (
                    f"claim not reproduced: claimed a gain of {claimed_gain:.4f}, verifiers measured"
                    f" {gain:.4f} (allowed shortfall {allowed:.4f})"
                )
                blamed = n < 2 or _refuted_without_the_worst(counted, claimed_gain, rules)
        return Verdict(
            decision, gain, tuple(counted), tuple(outliers), refuted, awaiting, reason,
            outliers_blamed=anchored and decision is not Decision.wait, counted_credited=credited,
            claim_blamed=blamed,
        )  # fmt: skip

    def reject_unless_one_word(reason: str) -> Verdict:
        """Reject, unless the rejection rests on one run far worse than the rest measured and the
        runs without it would not reject: one more verification decides that."""
        # Before the quorum, a lone run is weighed against the author's claim, which the quorum
        # would otherwise have weighed it against; a track of quorum 1 takes one verifier's word.
        worst = _lone_dissent(counted, claimed_gain if n < rules.quorum else None, sigma) if disputable else None
        if worst is not None and len(votes) < rules.max_runs:
            rest = [run for run in runs if run.account_id != worst.account_id]
            if judge(rest, claimed_gain=claimed_gain, rules=rules, disputable=False).decision is not Decision.reject:
                return verdict(
                    Decision.wait, 1,
                    f"the rejection rests on one run far worse than the rest measured ({worst.diff:+.4f});"
                    " one more verification decides",
                )  # fmt: skip
        return verdict(Decision.reject, 0, reason)

    evidence = log_likelihood_ratio([run.diff for run in counted], sigma) if counted else 0.0
    if n < rules.quorum:
        if n >= 2 and all(run.trusted for run in counted) and evidence <= LOG_REJECT:
            # A clear loss, measured by trusted workers of two accounts or more and nobody else:
            # rejecting early costs nobody trust and saves the rest of the quorum. One trusted
            # account's run alone would let a worker that earned its streak (a ring earns one by
            # verifying its own no-op claims) sink a real gain of up to 3σ by reporting it a little
            # worse, inside noise. Promotion always waits for the whole quorum.
            return reject_unless_one_word(_no_gain(gain, n, sigma))
        missing = rules.quorum - n
        return verdict(Decision.wait, missing, f"awaiting {missing} more verification(s) from other accounts")
    if rules.need_trusted and not any(run.trusted for run in counted):
        return verdict(Decision.wait, 1, "awaiting a verification from a trusted worker")
    assert gain is not None
    if claimed_gain is not None and claimed_gain - gain > _claim_allowance(rules, n):
        # A quorum measured far less than was claimed: that settles it, however undecided the
        # test between "no gain" and "a small gain" still is.
        return reject_unless_one_word(_no_gain(gain, n, sigma))
    if claimed_gain is not None and gain - claimed_gain > max(_claim_allowance(rules, n), claimed_gain):
        # More than twice the gain its own author measured, and beyond noise: honest verifiers
        # measure about what an honest author claimed (machines of a class differ, so not
        # exactly), so these runs look like a confirmation written without training. More
        # verifiers decide.
        if n >= rules.max_runs:
            return verdict(Decision.reject, 0, f"verifiers measured a gain of {gain:.4f}, far above the {claimed_gain:.4f}"
                                               " claimed: not trusted either way", credited=False)  # fmt: skip
        return verdict(
            Decision.wait, 1, f"verifiers measured far more than the {claimed_gain:.4f} claimed; one more is needed",
            credited=False,
        )  # fmt: skip
    if evidence >= LOG_PROMOTE:
        return verdict(Decision.promote, 0, None)
    if evidence <= LOG_REJECT:
        return reject_unless_one_word(_no_gain(gain, n, sigma))
    if n >= rules.max_runs:
        return verdict(
            Decision.reject, 0,
            f"not significant after {n} paired runs: a gain of {gain:.4f} (σ {sigma:.4f})",
        )
    return verdict(Decision.wait, 1, f"undecided after {n} paired runs (gain {gain:.4f}); one more is needed")


def _lone_dissent(counted: Sequence[PairedRun], claimed_gain: float | None, sigma: float) -> PairedRun | None:
    """The run that measured the candidate worst, when it is far (LONE_DISSENT_SIGMAS, in σ of the
    comparison) worse than what the rest measured: the other counted runs, or where it stands
    alone, `claimed_gain` (when given). None otherwise."""
    if not counted:
        return None
    worst = max(counted, key=lambda run: run.diff)
    others = [run.diff for run in counted if run is not worst]
    if not others and claimed_gain is not None:
        others = [0.0 - claimed_gain]
    if not others:
        return None
    # The excess is clipped at REPORT_EXCESS_CLIP, above LONE_DISSENT_SIGMAS: the test is unchanged by it.
    return worst if report_excess(worst.diff, others, sigma) > LONE_DISSENT_SIGMAS else None


def _refuted_without_the_worst(counted: Sequence[PairedRun], claimed_gain: float, rules: Rules) -> bool:
    """Whether the counted runs less the one that measured the candidate worst still refute the claim."""
    kept = sorted(run.diff for run in counted)[:-1]
    gain = 0.0 - statistics.fmean(kept)
    return claimed_gain - gain > _claim_allowance(rules, len(kept))


class Audit(StrEnum):
    upheld = "upheld"
    refuted = "refuted"
    undecided = "undecided"  # some audits refute, short of a majority: more decide


AUDIT_EXTRA_RUNS = 3  # audits asked for beyond the track's calibration runs while they split


def audit_outcome(verified_gain: float, audits: Sequence[PairedRun], *, noise_sigma: float, verifiers: int) -> Audit:
    """What the new head's calibration runs (each paired with the head it replaced, by accounts
    that took no part in the promotion) say of it. Each account's first run is a vote, and a vote
    refutes when it measures a gain far (OUTLIER_SIGMAS) below the verifiers'. A strict majority
    of two votes or more refutes the promotion. Some refuting votes short of a majority split it:
    one colluding auditor confirming a fake must not keep it, nor one saboteur refuting a real gain
    revoke it, so more audits decide (an honest audit refutes an honest promotion about once in
    4,000). Otherwise it is upheld."""
    votes = one_vote_per_account(audits)
    limit = OUTLIER_SIGMAS * noise_sigma * math.sqrt(1.0 + 1.0 / max(1, verifiers))
    refuting = sum(1 for run in votes if 0.0 - run.diff < verified_gain - limit)
    if len(votes) >= 2 and 2 * refuting > len(votes):
        return Audit.refuted
    return Audit.undecided if refuting else Audit.upheld


def hid_gain(claimed_gain: float | None, gain: float | None, *, noise_sigma: float, verifiers: int, tolerance: float) -> bool:
    """Whether verifiers measured a gain far above what its reporter claimed (the mirror of a
    refuted claim): a negative result that hid a find."""
    if claimed_gain is None or gain is None:
        return False
    return gain - claimed_gain > claim_allowance(tolerance=tolerance, noise_sigma=noise_sigma, verifiers=verifiers)


def _no_gain(gain: float | None, n: int, sigma: float) -> str:
    return f"no significant improvement: verifiers measured a gain of {gain:.4f} over {n} paired runs (σ {sigma:.4f})"


def is_candidate(claimed_gain: float | None, *, noise_sigma: float, margin_sigmas: float) -> bool:
    """An explore's own paired measurement clears the claim margin."""
    return claimed_gain is not None and math.isfinite(claimed_gain) and claimed_gain > margin_sigmas * noise_sigma


def pooled_sigma(prior_sigma: float, *, sum_squares: float, df: int) -> float:
    """σ of a paired difference: the track's configured value, updated by its measured history
    (within-candidate sums of squares) as a conjugate prior worth POOLING_PRIOR_DF runs, and kept
    within POOLING_BOUND of the configured value either way. Unbounded, the history is an attack
    surface: verifiers reporting wild differences would widen σ until no fake stood out, and a
    ring reporting identical ones would narrow it until noise looked like a gain."""
    pooled = math.sqrt((POOLING_PRIOR_DF * prior_sigma**2 + sum_squares) / (POOLING_PRIOR_DF + df))
    return min(max(pooled, prior_sigma / POOLING_BOUND), prior_sigma * POOLING_BOUND)


def within_sum_squares(diffs: Sequence[float]) -> tuple[float, int]:
    """The spread of one candidate's counted differences around their mean, with its df."""
    if len(diffs) < 2:
        return 0.0, 0
    mean = statistics.fmean(diffs)
    return sum((d - mean) ** 2 for d in diffs), len(diffs) - 1


def report_excess(report: float, others: Sequence[float], sigma: float) -> float:
    """How much worse (a larger paired difference: the variant scored worse against its
    reference) one worker reported than the mean of `others` measuring the same thing, in σ of
    that difference (σ·√(1 + 1/n)), clipped to ±REPORT_EXCESS_CLIP."""
    if not others:
        raise ValueError("an excess needs at least one other measurement")
    spread = sigma * math.sqrt(1.0 + 1.0 / len(others))
    excess = (report - statistics.fmean(others)) / spread
    return min(max(excess, -REPORT_EXCESS_CLIP), REPORT_EXCESS_CLIP)


def report_comparisons(runs: Sequence[PairedRun], sigma: float) -> list[tuple[PairedRun, float]]:
    """Each account's run in one round of verification (one candidate paired with one head)
    against the other accounts' consistent runs (as the decision splits them): (run, excess).
    Empty while the round has no consistent majority to compare with."""
    votes = one_vote_per_account(runs)
    split = _split_outliers(votes, sigma)
    if split is None:
        return []
    counted, _outliers, _anchored = split
    compared = []
    for vote in votes:
        others = [run.diff for run in counted if run.account_id != vote.account_id]
        if others:
            compared.append((vote, report_excess(vote.diff, others, sigma)))
    return compared


def next_report_bias(bias: float, excess: float) -> float:
    """A worker's record after one more comparison: Page's CUSUM, never below zero.
    (services/verification applies the same step in SQL, as an increment.)"""
    return max(0.0, bias + excess - REPORT_BIAS_DRIFT)


def record_alarms(bias: float, bound: float = REPORT_BIAS_ALARM) -> bool:
    """Whether a worker's record (of reporting others' work worse, or with OWN_RESULTS_ALARM its
    own results better) shows it doing so as a rule."""
    return bias >= bound
