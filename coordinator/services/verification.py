"""Applying the promotion statistics (services/verdicts.py) to the tables: claims, verify runs,
calibration, trust.

- An explore run's claimed gain is its worker's own paired measurement: the parent's score in the
  same lease (its control) or in the worker's fresh reference run with the same seed, minus the
  child's. Beyond the track's claim margin it makes the variant a candidate.
- Every verify run is paired with the head. On a track with a held-out pool both halves are scored
  on the lease's held-out windows, and the difference is taken there: a variant that memorised the
  public val shard gains nothing where it counts. The promoted metric is the verifiers' public mean,
  never the author's claim; the next calibration of the new head replaces it with runs from two
  accounts that were not selected for being low.
- Trust moves only when a candidate is decided: the counted verifiers gain a valid result, a
  verifier set aside against trusted runs and an author whose claim was refuted lose their streak
  and count an invalid result (verdicts.py says why an untrusted majority blames nobody); the
  claims that rest on one measurement of their parent count once (`_charge_refuted_claim`).
  QUARANTINE_AFTER_INVALID of those quarantine the worker.
- Each decided candidate's verify runs, and each spot check, also go into every worker's record of
  reporting others' work worse than other accounts measured it (verdicts.py). A worker whose record
  passes its bound is quarantined, its runs stop counting, and the candidates it helped reject
  against the current head are judged again without them (`_reopen_rejections_resting_on`). A spot
  check also goes into its reporter's record of reporting its own results better than others
  reproduce them, which quarantines the same way at a bound of its own (a lazy worker's record).

Invariants, on any number of replicas sharing one PostgreSQL:
- A variant's results are applied one at a time: `record_calibration` and `record_verification`
  lock the variant's row first (FOR NO KEY UPDATE: new leases and runs that merely reference it
  are not held up) and read its runs after the lock, so the last of two results taken at once on
  two replicas sees both, and a candidate is decided once it has its quorum, never stranded.
- The head moves only by a compare-and-swap on the track row (`_swap_head`), so two promotions
  decided at once cannot both win; the loser is verified again against the new head.
- The noise history grows by increments in SQL (`_pool_noise`), so concurrent decisions all count.
"""

from __future__ import annotations

import logging
import math
import secrets
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from coordinator.errors import DomainError
from coordinator.models import Lease, Run, Track, Variant, Worker
from coordinator.services import verdicts
from coordinator.services.leases import (
    ACTIVE,
    TRUSTED_STREAK,
    calibration_runs_wanted,
    claims_on_measurement,
    explore_reference,
    head_audited,
    is_trusted,
    verify_runs_against,
)
from coordinator.services.verdicts import Decision, PairedRun, Rules, Verdict
from shared.protocol import ErrorCode, LeaseKind, RunStatus, VariantStatus

log = logging.getLogger(__name__)

QUARANTINE_AFTER_INVALID = 3
# Each run of this many valid results in a row takes one failed check off a worker's count, so that
# rare honest faults do not add up over a volunteer's years to a quarantine. A worker that lies now
# and then must earn this many checked results per lie to stay below the bound, and each lie is
# still refuted (the promotion test, not the count, keeps it off the leaderboard).
FORGIVE_AFTER_VALID = 20


@dataclass(frozen=True)
class SpotCheckRates:
    """Shares of negative results re-run by another account, so that a worker that hides good ideas
    (reports them worse) or reports without training is caught. New and untrusted workers are
    checked more often (coordinator.config: spot_check_rate_*)."""

    untrusted: float = 0.05
    trusted: float = 0.01


def track_sigma(track: Track) -> float:
    """σ of one paired difference on this track: configured, refined by its measured history."""
    prior = track.noise_sigma if track.noise_sigma is not None and track.noise_sigma > 0 else track.tolerance / 4
    return verdicts.pooled_sigma(prior, sum_squares=track.noise_sum_squares or 0.0, df=track.noise_df or 0)


def paired_score(run: Run) -> float | None:
    """The run's score minus its control's: on held-out windows where both have them."""
    if run.val_bpb is None or run.control_val_bpb is None:
        return None
    if run.holdout_bpb is not None and run.control_holdout_bpb is not None:
        return run.holdout_bpb - run.control_holdout_bpb
    return run.val_bpb - run.control_val_bpb


def ok_runs(session: Session, variant: Variant, kind: LeaseKind) -> list[Run]:
    return list(
        session.scalars(
            select(Run)
            .where(Run.variant_id == variant.id, Run.kind == kind.value, Run.status == RunStatus.ok.value)
            .order_by(Run.id)
        )
    )


def lock_for_decision(session: Session, variant: Variant) -> None:
    """Hold the variant's row until the transaction ends and re-read it: whatever another replica
    decided about it before the lock was granted is seen here. Within READ COMMITTED every query
    after this one sees the runs committed before it."""
    session.flush()  # what this transaction changed is written first, so the refresh keeps it
    session.execute(select(Variant.id).where(Variant.id == variant.id).with_for_update(key_share=True))
    session.refresh(variant)


# --- calibration ------------------------------------------------------------------------------


def record_calibration(session: Session, track: Track, head: Variant) -> None:
    """The head's shown scores: the mean of its calibration runs (from two accounts or more, none
    of which took part in its promotion), which replaces the verifiers' mean it was promoted with.
    A promoted head's calibration runs are paired with the head it replaced: when most of them
    contradict the verifiers (services/verdicts.audit_outcome), the promotion is revoked, and while
    they split, one more audit is asked for (head.audit_runs), up to AUDIT_EXTRA_RUNS more."""
    lock_for_decision(session, head)
    runs = [run for run in ok_runs(session, head, LeaseKind.calibrate) if run.val_bpb is not None]
    if not runs:
        return
    head.val_bpb = statistics.fmean(run.val_bpb for run in runs if run.val_bpb is not None)
    held = [run.holdout_bpb for run in runs if run.holdout_bpb is not None]
    head.holdout_bpb = statistics.fmean(held) if held and len(held) == len(runs) else head.holdout_bpb
    previous = head.previous_head
    if previous is not None and head.verified_gain is not None and head.status == VariantStatus.verified.value:
        audits = [p for _run, p in _paired_runs(runs)]
        verifiers = verify_runs_against(session, head.id, previous.id)
        sigma = track_sigma(track)
        outcome = verdicts.audit_outcome(head.verified_gain, audits, noise_sigma=sigma, verifiers=len(verifiers))
        if outcome is verdicts.Audit.refuted:
            _revoke(session, track, head, previous, audits=audits, verifiers=verifiers, sigma=sigma)
        elif outcome is verdicts.Audit.undecided:
            votes = len(verdicts.one_vote_per_account(audits))
            if calibration_runs_wanted(track, head.audit_runs) <= votes < track.calibration_runs + verdicts.AUDIT_EXTRA_RUNS:
                head.audit_runs = votes + 1
    session.flush()


def _swap_head(session: Session, track: Track, *, expected: Variant | None, new: Variant) -> bool:
    """Make `new` the head if the head is still `expected`: a compare-and-swap in the database, so
    two results that each decide a promotion at once cannot both win."""
    swapped = session.execute(
        update(Track)
        .where(Track.id == track.id, Track.head_variant_id == (expected.id if expected is not None else None))
        .values(head_variant_id=new.id)
        .execution_options(synchronize_session=False)
    )
    session.expire(track, ["head_variant_id", "head"])
    return swapped.rowcount == 1  # type: ignore[attr-defined]


def _revoke(
    session: Session,
    track: Track,
    head: Variant,
    previous: Variant,
    *,
    audits: list[PairedRun],
    verifiers: list[Run],
    sigma: float,
) -> None:
    """Undo a promotion its audit refuted; the verifiers whose runs backed it lose trust."""
    measured = statistics.fmean(0.0 - run.diff for run in audits)
    limit = verdicts.OUTLIER_SIGMAS * sigma * math.sqrt(2.0)
    reason = (
        f"promotion revoked: {len(audits)} calibration runs by other accounts measured a gain of {measured:.4f}"
        f" over the previous head, against the verifiers' {head.verified_gain:.4f}"
    )
    log.warning("track %s: %s is no longer the head: %s", track.id, head.hash[:12], reason)
    head.status = VariantStatus.rejected.value
    head.reason = reason
    _swap_head(session, track, expected=head, new=previous)
    for run in verifiers:
        diff = paired_score(run)
        if diff is not None and (0.0 - diff) - measured > limit:
            _mark_invalid(run.worker, f"verified {head.hash[:12]}, whose promotion other accounts refuted")
    if head.author is None:
        return
    if found_by_spot_check(track, head):
        # Its author claimed nothing (it reported a negative result): the verifiers who "found" the
        # gain are the ones refuted, and the strike the author took for hiding it is taken back.
        if head.hid_gain_charged:
            _take_back_strike(head.author, head)
        return
    _mark_invalid(head.author, f"claimed {head.hash[:12]}, whose promotion other accounts refuted")


def _take_back_strike(worker: Worker, variant: Variant) -> None:
    """Undo the strike `worker` took over `variant`, and the quarantine it alone brought."""
    variant.hid_gain_charged = False
    worker.invalid_results = max(0, worker.invalid_results - 1)
    brought = worker.quarantine_reason is not None and f"for {variant.hash[:12]}," in worker.quarantine_reason
    if worker.quarantined and brought and worker.invalid_results < QUARANTINE_AFTER_INVALID:
        worker.quarantined = False
        worker.quarantine_reason = None
        log.info("worker %s released: the gain it was found to hide was refuted by its audit", worker.id)


# --- claims -----------------------------------------------------------------------------------


def claimed_gain(session: Session, lease: Lease, run: Run, worker: Worker) -> float | None:
    """An explore run's gain as its own worker measured it, or None without a paired reference."""
    if run.val_bpb is None:
        return None
    if run.control_val_bpb is not None:
        return run.control_val_bpb - run.val_bpb
    reference = explore_reference(session, worker, lease.variant)
    if reference is None or reference.seed != lease.seed or reference.control_val_bpb is None:
        return None
    return reference.control_val_bpb - run.val_bpb


def judge_claim(track: Track, gain: float | None) -> VariantStatus:
    """A claim becomes a candidate only beyond the track's margin, in σ of a paired difference."""
    if verdicts.is_candidate(gain, noise_sigma=track_sigma(track), margin_sigmas=track.claim_margin):
        return VariantStatus.candidate
    return VariantStatus.discarded


def picked_for_spot_check(worker: Worker, rates: SpotCheckRates) -> bool:
    """Whether a negative result of this worker's is re-run by another account; the worker cannot
    know which (the draw is the coordinator's own). A worker whose own results a check has found
    better than reproduced (its record is above zero) is checked at the untrusted rate until its
    record forgets it: a streak earned by confirming others does not vouch for its own reports."""
    chance = rates.trusted if is_trusted(worker) and worker.result_bias <= 0.0 else rates.untrusted
    return secrets.randbelow(1_000_000) < chance * 1_000_000


def awaiting_reason(track: Track) -> str:
    return f"awaiting {track.quorum} verification(s) from other accounts"


# --- verification -----------------------------------------------------------------------------


def _credit_valid(worker: Worker) -> None:
    """One more valid result: the streak grows, and every FORGIVE_AFTER_VALID of them in a row
    forgive one failed check. A quarantined worker's count stands as it was quarantined (a result
    it delivered before may still be credited) until a maintainer releases it."""
    worker.valid_streak += 1
    if worker.valid_streak % FORGIVE_AFTER_VALID == 0 and worker.invalid_results > 0 and not worker.quarantined:
        worker.invalid_results -= 1


def _mark_invalid(worker: Worker, reason: str) -> None:
    worker.valid_streak = 0
    worker.invalid_results += 1
    if worker.invalid_results >= QUARANTINE_AFTER_INVALID and not worker.quarantined:
        worker.quarantined = True
        worker.quarantine_reason = f"{worker.invalid_results} invalid results, the last: {reason}"
        log.warning("worker %s quarantined: %s", worker.id, worker.quarantine_reason)


def _charge_refuted_claim(session: Session, candidate: Variant, author: Worker, reason: str, *, strike: bool) -> None:
    """The author of a refuted claim loses trust (when `strike`: the verifiers refute it even
    without the one that measured it worst), once per measurement of the parent the claim rests
    on. An explore reuses its worker's paired measurement of the parent (same seed) for up to
    REFERENCE_USES explores, so a parent measured while the machine was busy makes every claim
    against it look like a gain: those refutations are one fault, not several, and after the first
    the measurement is not reused (leases.explore_reference). A worker that lies pays each time,
    since each claim after a refutation rests on a fresh measurement."""
    seed = session.scalar(
        select(Run.seed).where(
            Run.variant_id == candidate.id, Run.worker_id == author.id, Run.kind == LeaseKind.explore.value
        ).order_by(Run.id).limit(1)
    )
    already = seed is not None and session.scalars(
        claims_on_measurement(author, candidate.parent_id, seed)
        .where(Variant.claim_refuted.is_(True), Variant.id != candidate.id)
        .limit(1)
    ).first() is not None
    candidate.claim_refuted = True
    # Not a valid result, whether or not it costs a strike: the author's run of valid results ends
    # (else a worker that lies on every claim could verify its way to trust, and to forgiveness).
    author.valid_streak = 0
    if strike and not already:
        _mark_invalid(author, reason)
    if seed is not None:
        _withdraw_claims_resting_on(session, candidate, author, seed)


def _withdraw_claims_resting_on(session: Session, refuted: Variant, author: Worker, seed: int) -> None:
    """The author's open candidates judged against the same measurement of the parent as a refuted
    claim are withdrawn unverified: a mismeasured parent makes them all look better, and a liar's
    batch of claims on one measurement would otherwise cost a round of verifications each for one
    strike. Nobody's trust moves, and a maintainer can re-queue them. A candidate another result
    is deciding right now (its row locked) is left to that decision."""
    siblings = session.scalars(
        claims_on_measurement(author, refuted.parent_id, seed)
        .where(Variant.status == VariantStatus.candidate.value, Variant.id != refuted.id)
        .with_for_update(of=Variant, key_share=True, skip_locked=True)
    ).all()
    for sibling in siblings:
        sibling.status = VariantStatus.unverified.value
        sibling.reason = (
            f"unverified: withdrawn, it was judged against the measurement of its parent that"
            f" {refuted.hash[:12]}'s refuted claim rested on"
        )


def _track_has_trusted_verifier(session: Session, track: Track, author: Worker | None) -> bool:
    """Whether some trusted worker outside the author's account could verify on this track."""
    query = select(func.count()).select_from(Worker).where(
        Worker.hardware_class == track.hardware_class,
        Worker.valid_streak >= TRUSTED_STREAK,
        Worker.quarantined.is_(False),
    )
    if author is not None:
        query = query.where(Worker.account_id != author.account_id)
    return int(session.scalar(query) or 0) > 0


def _paired_runs(runs: Sequence[Run]) -> list[tuple[Run, PairedRun]]:
    paired = []
    for run in runs:
        diff = paired_score(run)
        if diff is None or not math.isfinite(diff):
            continue
        worker = run.worker
        paired.append(
            (run, PairedRun(worker_id=worker.id, account_id=worker.account_id, trusted=is_trusted(worker), diff=diff))
        )
    return paired


def found_by_spot_check(track: Track, candidate: Variant) -> bool:
    """Whether a candidate's own claim falls short of the margin: it was reported as a negative
    result, and a spot check found the gain."""
    return not verdicts.is_candidate(candidate.claimed_gain, noise_sigma=track_sigma(track), margin_sigmas=track.claim_margin)


def current_verdict(session: Session, track: Track, candidate: Variant) -> tuple[list[tuple[Run, PairedRun]], Verdict]:
    """What the candidate's verify runs against the current head decide now, and those runs. A gain
    a spot check found is judged without its reporter's claim: that claim is the one in question,
    and verifiers measuring far more than it is what a hidden gain looks like. So is a candidate
    whose parent is no longer the head: its claim measured the gain over its parent, and the
    verifiers now measure it over another variant (one promoted meanwhile, perhaps a copy of this
    very change), so a shortfall refutes nothing its author said."""
    paired = _paired_runs(verify_runs_against(session, candidate.id, track.head_variant_id))
    claim_comparable = candidate.parent_id == track.head_variant_id and not found_by_spot_check(track, candidate)
    claimed = candidate.claimed_gain if claim_comparable else None
    rules = Rules(
        noise_sigma=track_sigma(track),
        quorum=track.quorum,
        max_runs=track.max_verifications,
        tolerance=track.tolerance,
        need_trusted=_track_has_trusted_verifier(session, track, candidate.author),
    )
    return paired, verdicts.judge([p for _run, p in paired], claimed_gain=claimed, rules=rules)


def _rejecting_failures(session: Session, track: Track, candidate: Variant) -> int:
    """How many accounts' verify runs of the candidate failed, when that is enough to reject it
    (else 0): more than a quorum of accounts (one vote each, quarantined workers' not counted), with
    a trusted worker among them where the track has one to give, as a promotion would need. A
    failure costs nobody trust (it may be the machine), so without these bounds a few accounts
    reporting crashes would sink any candidate for free."""
    failed = session.execute(
        select(Worker.account_id, Worker.valid_streak)
        .join(Run, Run.worker_id == Worker.id)
        .where(
            Run.variant_id == candidate.id, Run.kind == LeaseKind.verify.value, Run.status != RunStatus.ok.value,
            Worker.quarantined.is_(False),
        )
    ).all()
    accounts = len({account_id for account_id, _streak in failed})
    if accounts <= track.quorum:
        return 0
    if _track_has_trusted_verifier(session, track, candidate.author) and not any(
        streak >= TRUSTED_STREAK for _account, streak in failed
    ):
        return 0
    return accounts


def record_verification(session: Session, track: Track, candidate: Variant, run: Run, *, now: datetime) -> None:
    """Apply one verify run to a candidate: decide it once the sequential test can."""
    lock_for_decision(session, candidate)
    if candidate.spot_check and candidate.status == VariantStatus.discarded.value:
        if run.lease.control_variant_id == candidate.parent_id:
            _record_spot_check(session, track, candidate, run, now=now)
        session.flush()
        return
    if candidate.status != VariantStatus.candidate.value:
        return  # already decided by an earlier run; this one is kept as a record only
    author = candidate.author
    if run.status != RunStatus.ok.value or run.val_bpb is None:
        # As in BOINC, an error result decides nothing: it may be the verifier's machine. The slot
        # is handed to another worker, and only a variant that keeps failing is rejected.
        if accounts := _rejecting_failures(session, track, candidate):
            candidate.status = VariantStatus.rejected.value
            candidate.reason = (
                f"not reproduced: verify runs failed on the machines of {accounts} accounts,"
                f" the last: {run.reason or run.status}"
            )
        session.flush()
        return
    if run.lease.control_variant_id != track.head_variant_id:
        session.flush()  # paired with a head that has since been replaced: it measured another question
        return
    paired, verdict = current_verdict(session, track, candidate)
    if verdict.decision is Decision.wait:
        candidate.reason = verdict.reason
        session.flush()
        return

    head = track.head
    if verdict.decision is Decision.promote and not head_audited(session, track):
        candidate.reason = "verified; awaiting the audit of the current head before it can replace it"
        session.flush()
        return
    if verdict.decision is Decision.promote and not _swap_head(session, track, expected=head, new=candidate):
        # Another result promoted something else meanwhile (on another replica, say): these runs
        # measured the gain over a head that is gone, so the candidate is verified again.
        candidate.reason = "the head changed while it was being verified; verifying it again against the new head"
        session.flush()
        return
    runs_by_worker = {p.worker_id: r for r, p in paired}
    counted = [runs_by_worker[p.worker_id] for p in verdict.counted]
    scores = [r.val_bpb for r in counted if r.val_bpb is not None]
    candidate.val_bpb = statistics.fmean(scores) if scores else candidate.val_bpb
    held = [r.holdout_bpb for r in counted if r.holdout_bpb is not None]
    candidate.holdout_bpb = statistics.fmean(held) if held and len(held) == len(counted) else None
    candidate.parent_val_bpb = head.val_bpb if head is not None else None
    candidate.verified_gain = verdict.gain
    if verdict.counted_credited:
        for verifier in verdict.counted:
            _credit_valid(runs_by_worker[verifier.worker_id].worker)
    if verdict.outliers_blamed:
        for outlier in verdict.outliers:
            _mark_invalid(
                runs_by_worker[outlier.worker_id].worker, f"a verify run of {candidate.hash[:12]} far from the trusted verifiers'"
            )
    _pool_noise(session, track, [p.diff for p in verdict.counted])
    if author is not None:
        if verdict.claim_refuted:
            _charge_refuted_claim(
                session, candidate, author, verdict.reason or "claim not reproduced", strike=verdict.claim_blamed
            )
        elif verdict.decision is Decision.promote and found_by_spot_check(track, candidate):
            hidden = verdicts.hid_gain(candidate.claimed_gain, verdict.gain, noise_sigma=track_sigma(track),
                                       verifiers=len(verdict.counted), tolerance=track.tolerance)  # fmt: skip
            if hidden:
                _mark_invalid(author, f"hid a gain: reported {candidate.claimed_gain:.4f} for {candidate.hash[:12]},"
                                      f" {len(verdict.counted)} verifiers measured {verdict.gain:.4f}")  # fmt: skip
                candidate.hid_gain_charged = True
        elif verdict.decision is Decision.promote:
            _credit_valid(author)
    if verdict.decision is Decision.promote:
        candidate.status = VariantStatus.verified.value
        candidate.verified_at = now
        candidate.reason = None
        candidate.previous_head_id = head.id if head is not None else None
        candidate.promoted_val_bpb = candidate.val_bpb
        candidate.verified_by = [
            {"run": r.id, "worker": r.worker.name, "account": r.worker.account.name}
            for r in sorted(counted, key=lambda r: r.id)
        ]
    else:
        candidate.status = VariantStatus.rejected.value
        candidate.reason = verdict.reason
    session.flush()
    if verdict.counted_credited:
        # Last: a verifier quarantined here has this candidate judged again without its runs too.
        _weigh_verifiers(session, candidate, sigma=track_sigma(track), now=now)
        session.flush()


def _pool_noise(session: Session, track: Track, diffs: list[float]) -> None:
    """Add a decided candidate's spread to the track's noise history, as increments in the
    database so that decisions on several replicas at once all count."""
    ss, df = verdicts.within_sum_squares(diffs)
    if df:
        session.execute(
            update(Track)
            .where(Track.id == track.id)
            .values(noise_sum_squares=Track.noise_sum_squares + ss, noise_df=Track.noise_df + df)
            .execution_options(synchronize_session=False)
        )
        session.expire(track, ["noise_sum_squares", "noise_df"])


def _weigh_verifiers(session: Session, candidate: Variant, *, sigma: float, now: datetime) -> None:
    """Add each verifier's run of a decided candidate to its record of reporting worse than others
    (verdicts.report_comparisons), in every round of its verification: the runs paired with a head
    since replaced were measurements of one thing too, and are weighed once, now."""
    rounds: dict[int | None, list[Run]] = {}
    for run in ok_runs(session, candidate, LeaseKind.verify):
        if not run.worker.quarantined:  # as in the verdicts: a quarantined worker's runs no longer count
            rounds.setdefault(run.lease.control_variant_id, []).append(run)
    weighed = []
    for runs in rounds.values():
        paired = _paired_runs(runs)
        by_worker = {p.worker_id: r.worker for r, p in paired}
        weighed += [(by_worker[vote.worker_id], excess) for vote, excess in verdicts.report_comparisons(
            [p for _r, p in paired], sigma)]  # fmt: skip
    _weigh_reports(session, weighed, f"a verify run of {candidate.hash[:12]}", now=now)


@dataclass(frozen=True)
class _Record:
    """One of a worker's two records (verdicts.py): its columns, and what passing its bound says."""

    bias: str
    checks: str
    bound: float
    charge: str


REPORTS_WORSE = _Record(
    "report_bias", "report_bias_checks", verdicts.REPORT_BIAS_ALARM,
    "reports others' work worse than other accounts measure it",
)  # fmt: skip
OWN_RESULTS_BETTER = _Record(
    "result_bias", "result_bias_checks", verdicts.OWN_RESULTS_ALARM,
    "reports its own discarded changes better than other accounts reproduce them",
)  # fmt: skip


def _weigh_reports(
    session: Session, weighed: Sequence[tuple[Worker, float]], what: str, *, now: datetime,
    record: _Record = REPORTS_WORSE,
) -> None:  # fmt: skip
    """Add comparisons to the workers' `record` one by one (verdicts.next_report_bias, as an
    increment in SQL: a worker's runs are decided on several replicas at once), and quarantine a
    worker whose record passes its bound: the candidates its runs helped reject are judged again
    without them."""
    bias_column, checks_column = getattr(Worker, record.bias), getattr(Worker, record.checks)
    for worker, excess in weighed:
        step = excess - verdicts.REPORT_BIAS_DRIFT
        still_positive = bias_column + step > 0
        bias, checks = session.execute(
            update(Worker)
            .where(Worker.id == worker.id)
            .values({bias_column: case((still_positive, bias_column + step), else_=0.0),
                     checks_column: case((still_positive, checks_column + 1), else_=0)})
            .returning(bias_column, checks_column)
            .execution_options(synchronize_session=False)
        ).one()  # fmt: skip
        set_committed_value(worker, record.bias, bias)  # the row's values after the increment
        set_committed_value(worker, record.checks, checks)
        if verdicts.record_alarms(bias, record.bound) and not worker.quarantined:
            worker.valid_streak = 0
            worker.quarantined = True
            worker.quarantine_reason = (
                f"{record.charge}: its record reached {bias:.1f} (the bound is {record.bound:g})"
                f" over its last {checks} comparisons, the last {what}"
            )
            log.warning("worker %s quarantined: %s", worker.id, worker.quarantine_reason)
            session.flush()
            _reopen_rejections_resting_on(session, worker, now=now)


def _reopen_rejections_resting_on(session: Session, worker: Worker, *, now: datetime) -> None:
    """Candidates a quarantined worker verified and that were rejected against their track's
    current head are judged again: its runs no longer count (leases.verify_runs_against), and a
    candidate that the other accounts' runs alone would not reject goes back to the verifiers'
    queue, its wait restarted. A promotion its audit revoked stays revoked, and nobody's trust
    moves. A candidate another result is deciding right now (its row locked) is left as it is."""
    verified_by_worker = (
        select(Run.variant_id)
        .join(Lease, Lease.id == Run.lease_id)
        .join(Track, Track.id == Lease.track_id)
        .where(
            Run.worker_id == worker.id,
            Run.kind == LeaseKind.verify.value,
            Lease.control_variant_id == Track.head_variant_id,
        )
    )
    rejected = session.scalars(
        select(Variant)
        .where(
            Variant.id.in_(verified_by_worker),
            Variant.status == VariantStatus.rejected.value,
            Variant.verified_at.is_(None),
        )
        .with_for_update(of=Variant, key_share=True, skip_locked=True)
    ).all()
    for candidate in rejected:
        track = session.get(Track, candidate.track_id)
        assert track is not None
        _paired, verdict = current_verdict(session, track, candidate)
        if verdict.decision is Decision.reject:
            continue
        candidate.status = VariantStatus.candidate.value
        candidate.requeued_at = now
        # No longer refuted: the author's measurement of the parent may be reused again, and a later
        # refuted claim on it is the author's first fault there, not a repeat.
        candidate.claim_refuted = False
        candidate.reason = (
            f"re-opened: a verifier of its rejection, {worker.name}, was quarantined for reporting others' work"
            f" worse; {verdict.reason or 'awaiting verification'}"
        )
        log.info("track %s: %s re-opened: %s", track.id, candidate.hash[:12], candidate.reason)


def _record_spot_check(session: Session, track: Track, variant: Variant, run: Run, *, now: datetime) -> None:
    """Another account's paired re-run of a negative result, against the variant's parent. One
    account's word costs nobody trust (a colluder could frame any reporter with it): the two runs
    go into both workers' records of reporting worse, and the check's excess over the report into
    the reporter's record of reporting its own results better (verdicts.py); the reporter's streak
    grows when they agree, and a gain the reporter missed makes the variant a candidate after all,
    whose verifiers decide whether it was hidden (record_verification)."""
    variant.spot_check = False
    measured = paired_score(run)
    if run.status != RunStatus.ok.value or measured is None or variant.claimed_gain is None:
        return  # an error result decides nothing; the check is simply not made
    gain = 0.0 - measured
    sigma = track_sigma(track)
    limit = max(track.tolerance, verdicts.OUTLIER_SIGMAS * sigma * math.sqrt(2.0))
    hidden_gain = verdicts.is_candidate(gain, noise_sigma=sigma, margin_sigmas=track.claim_margin) and (
        abs(gain - variant.claimed_gain) > limit
    )
    reporter = variant.author
    if reporter is not None:
        if abs(gain - variant.claimed_gain) <= limit:
            _credit_valid(reporter)
        # Each side's record: the reporter's difference against the check's, and the other way round
        # (unless the variant becomes a candidate: the check is then one of its verify runs, weighed
        # with the others when it is decided).
        what = f"a spot check of {variant.hash[:12]}"
        weighed = [(reporter, verdicts.report_excess(0.0 - variant.claimed_gain, [measured], sigma))]
        if not hidden_gain:
            check_excess = verdicts.report_excess(measured, [0.0 - variant.claimed_gain], sigma)
            weighed.append((run.worker, check_excess))
            _weigh_reports(session, [(reporter, check_excess)], what, now=now, record=OWN_RESULTS_BETTER)
        _weigh_reports(session, weighed, what, now=now)
    if hidden_gain:
        variant.status = VariantStatus.candidate.value
        variant.reason = f"a spot check measured a gain of {gain:.4f}; {awaiting_reason(track)}"


def expire_unverified(session: Session, *, now: datetime) -> int:
    """Candidates past their track's wait limit become `unverified`: nobody's trust is touched, and
    a maintainer can re-queue them. Idempotent; returns how many expired."""
    expired = 0
    for track in session.scalars(select(Track)):
        working = select(Lease.variant_id).where(Lease.track_id == track.id, Lease.state == ACTIVE)
        stale = session.scalars(
            select(Variant).where(
                Variant.track_id == track.id,
                Variant.status == VariantStatus.candidate.value,
                func.coalesce(Variant.requeued_at, Variant.created_at) < now - timedelta(seconds=track.verify_timeout_s),
                Variant.id.not_in(working),  # a verifier is at work on it: let it finish
            )
        )
        for candidate in stale:
            candidate.status = VariantStatus.unverified.value
            candidate.reason = (
                f"unverified: not decided within {track.verify_timeout_s:g} s"
                f" ({candidate.reason or 'no verifier came'})"
            )
            expired += 1
    if expired:
        session.flush()
    return expired


def requeue(session: Session, variant: Variant, *, now: datetime) -> None:
    """Put a candidate that expired unverified back in the verifiers' queue, its wait restarted.

    The verify runs it already has still count while they are paired with the current head.
    Re-queueing anything else is refused: a decided variant stays decided.
    """
    if variant.status != VariantStatus.unverified.value:
        raise DomainError(
            ErrorCode.conflict, f"{variant.hash[:12]} is {variant.status}: only an unverified candidate is re-queued"
        )
    variant.status = VariantStatus.candidate.value
    variant.reason = "re-queued: awaiting verifications from other accounts"
    variant.requeued_at = now
    session.flush()
