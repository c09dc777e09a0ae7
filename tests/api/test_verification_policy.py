"""The verification policy through the API: a quorum of distinct accounts, spot checks of negative
results, the audit of a promotion by its calibration, quarantine and release, and the expiry of
candidates nobody verifies."""

from __future__ import annotations

import dataclasses
import math

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from coordinator.cli import app as coordinator_cli
from coordinator.models import Variant
from coordinator.models import Worker as WorkerRow
from coordinator.services.leases import TRUSTED_STREAK
from coordinator.services.moderation import release
from coordinator.services.reaper import reap
from coordinator.services.tracks import TrackParams, quorum_shortfalls
from coordinator.services.verdicts import pooled_sigma
from tests.api.conftest import TRACK, Coordinator, Worker, calibrate

TIMEOUT_S = 3600.0


@pytest.fixture
def track_params(track_params: TrackParams) -> TrackParams:
    return dataclasses.replace(track_params, quorum=2, verify_timeout_s=TIMEOUT_S)


def variant(coordinator: Coordinator, digest: str) -> dict:
    return coordinator.client.get(f"/v1/variants/{digest}?track_id={TRACK}").json()  # type: ignore[no-any-return]


def trust(coordinator: Coordinator, worker: Worker) -> tuple[int, int, bool]:
    with coordinator.session() as session:
        row = session.get(WorkerRow, worker.worker_id)
        return row.valid_streak, row.invalid_results, row.quarantined


def test_a_quorum_is_two_accounts_never_two_machines_of_one(coordinator: Coordinator, make_worker) -> None:
    alice, bob1, bob2, carol = (make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("b2", "bob"),
                                make_worker("c1", "carol"))  # fmt: skip
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    assert bob1.run(bob1.lease(), 0.91)["variant_status"] == "candidate"
    assert variant(coordinator, claim["variant_hash"])["reason"] == "awaiting 1 more verification(s) from other accounts"
    assert bob2.lease()["kind"] == "explore"  # bob's account has had its say
    verify = carol.lease()
    assert (verify["kind"], verify["variant"]["hash"]) == ("verify", claim["variant_hash"])
    assert carol.run(verify, 0.90)["variant_status"] == "verified"
    runs = variant(coordinator, claim["variant_hash"])["runs"]
    assert sorted(r["account"] for r in runs if r["kind"] == "verify") == ["bob", "carol"]


def test_a_candidate_nobody_verifies_expires_as_unverified_and_costs_nobody_trust(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    bob.run(bob.lease(), 0.91)  # one account of the two the quorum needs
    factory = coordinator.client.app.state.arn.session_factory  # type: ignore[attr-defined]
    coordinator.clock.advance(TIMEOUT_S - 1)
    reap(factory, now=coordinator.clock())
    assert variant(coordinator, claim["variant_hash"])["status"] == "candidate"
    coordinator.clock.advance(2)
    reap(factory, now=coordinator.clock())
    reap(factory, now=coordinator.clock())  # idempotent
    detail = variant(coordinator, claim["variant_hash"])
    assert detail["status"] == "unverified"
    assert detail["reason"] == (
        "unverified: not decided within 3600 s (awaiting 1 more verification(s) from other accounts)"
    )
    assert trust(coordinator, alice) == (0, 0, False)


def test_a_maintainer_requeues_an_unverified_candidate_and_its_wait_restarts(
    coordinator: Coordinator, make_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)["variant_hash"]
    bob.run(bob.lease(), 0.91)
    factory = coordinator.client.app.state.arn.session_factory  # type: ignore[attr-defined]
    coordinator.clock.advance(TIMEOUT_S + 1)
    reap(factory, now=coordinator.clock())
    assert variant(coordinator, claim)["status"] == "unverified"
    monkeypatch.setenv("ARN_DATABASE_URL", coordinator.settings.resolved_database_url)
    monkeypatch.setenv("ARN_DATA_DIR", str(coordinator.settings.data_dir))
    cli = CliRunner()

    requeued = cli.invoke(coordinator_cli, ["variant", "requeue", claim])
    assert requeued.exit_code == 0, requeued.output
    assert (variant(coordinator, claim)["status"], variant(coordinator, claim)["reason"]) == (
        "candidate", "re-queued: awaiting verifications from other accounts"
    )
    with coordinator.session() as session:  # the CLI's clock is the real one: restart the wait from the test's
        session.scalars(select(Variant).where(Variant.hash == claim)).one().requeued_at = coordinator.clock()
        session.commit()
    coordinator.clock.advance(TIMEOUT_S - 1)
    reap(factory, now=coordinator.clock())
    verify = carol.lease()
    assert (verify["kind"], verify["variant"]["hash"]) == ("verify", claim)
    assert carol.run(verify, 0.90)["variant_status"] == "verified"  # with bob's run from before: a quorum

    again = cli.invoke(coordinator_cli, ["variant", "requeue", claim])
    assert again.exit_code == 1 and "only an unverified candidate is re-queued" in again.output


def test_the_start_warns_of_a_quorum_the_accounts_seen_cannot_meet(coordinator: Coordinator, make_worker) -> None:
    with coordinator.session() as session:
        assert quorum_shortfalls(session) == []  # nobody has joined yet: nothing to say
    make_worker("a1", "alice")
    make_worker("b1", "bob")
    with coordinator.session() as session:
        assert [(track.id, accounts) for track, accounts in quorum_shortfalls(session)] == [(TRACK, 2)]
    make_worker("c1", "carol")
    with coordinator.session() as session:
        assert quorum_shortfalls(session) == []


def test_a_promotion_its_calibration_refutes_is_revoked(coordinator: Coordinator, make_worker) -> None:
    liar, stamp1, stamp2 = make_worker("l1", "liar"), make_worker("s1", "stamp1"), make_worker("s2", "stamp2")
    calibrate(coordinator, [1.00, 1.00])
    baseline = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"]
    fake = liar.run(liar.lease(), 0.50)  # a gain of 0.5 it never measured
    stamp1.run(stamp1.lease(), 0.50)
    assert stamp2.run(stamp2.lease(), 0.50)["variant_status"] == "verified"
    # Its authors and verifiers never calibrate it: accounts that took no part do, paired with the
    # head it replaced, and both measure no gain.
    for worker in (liar, stamp1, stamp2):
        assert worker.lease()["kind"] == "explore"
    for name in ("h1", "h2"):
        honest = make_worker(name, name)
        audit = honest.lease()
        assert (audit["kind"], audit["variant"]["hash"], audit["control"]["hash"]) == (
            "calibrate", fake["variant_hash"], baseline
        )
        honest.run(audit, 1.00, control_bpb=1.00)
    detail = variant(coordinator, fake["variant_hash"])
    assert detail["status"] == "rejected"
    assert detail["reason"] == (
        "promotion revoked: 2 calibration runs by other accounts measured a gain of 0.0000 over the previous"
        " head, against the verifiers' 0.5000"
    )
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"] == baseline
    for worker in (liar, stamp1, stamp2):
        assert trust(coordinator, worker)[1] == 1


def test_one_colluding_auditor_does_not_keep_a_fake_promotion_a_third_audit_decides(
    coordinator: Coordinator, make_worker
) -> None:
    liar, stamp1, stamp2 = make_worker("l1", "liar"), make_worker("s1", "stamp1"), make_worker("s2", "stamp2")
    calibrate(coordinator, [1.00, 1.00])
    baseline = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"]
    fake = liar.run(liar.lease(), 0.95)
    stamp1.run(stamp1.lease(), 0.95)
    assert stamp2.run(stamp2.lease(), 0.95)["variant_status"] == "verified"
    for name, gain in (("ring-auditor", 0.05), ("h1", 0.0)):  # an account of the ring confirms, an honest one does not
        auditor = make_worker(name, name)
        audit = auditor.lease()
        assert (audit["kind"], audit["variant"]["hash"]) == ("calibrate", fake["variant_hash"])
        auditor.run(audit, 1.00 - gain, control_bpb=1.00)
    assert variant(coordinator, fake["variant_hash"])["status"] == "verified"  # split: not yet decided
    with coordinator.session() as session:
        assert session.scalars(select(Variant.audit_runs).where(Variant.hash == fake["variant_hash"])).one() == 3
    # Nothing is promoted over a head whose audit is not done, and the third audit goes out.
    third = make_worker("h2", "h2")
    audit = third.lease()
    assert (audit["kind"], audit["variant"]["hash"]) == ("calibrate", fake["variant_hash"])
    third.run(audit, 1.00, control_bpb=1.00)
    detail = variant(coordinator, fake["variant_hash"])
    assert (detail["status"], detail["reason"].startswith("promotion revoked")) == ("rejected", True)
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"] == baseline


def test_an_honest_promotion_survives_its_audit(coordinator: Coordinator, make_worker) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    bob.run(bob.lease(), 0.91)
    carol.run(carol.lease(), 0.90)
    calibrate(coordinator, [0.91, 0.90])  # paired with the previous head at HEAD_BPB: a gain of about 0.1
    head = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()
    assert (head["hash"], head["val_bpb"]) == (claim["variant_hash"], pytest.approx(0.905))


def test_a_quarantined_worker_is_told_why_and_a_release_lets_it_work_again(
    coordinator: Coordinator, make_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = make_worker("a1", "alice")
    monkeypatch.setenv("ARN_DATABASE_URL", coordinator.settings.resolved_database_url)
    monkeypatch.setenv("ARN_DATA_DIR", str(coordinator.settings.data_dir))
    cli = CliRunner()

    result = cli.invoke(coordinator_cli, ["worker", "quarantine", alice.worker_id[:8], "--reason", "tampered reports"])
    assert result.exit_code == 0, result.output
    refused = alice.post("/v1/leases", {"track_id": TRACK})
    assert (refused.status_code, refused.json()["code"]) == (403, "worker_quarantined")
    assert refused.json()["message"] == "this worker is quarantined: tampered reports"
    listed = cli.invoke(coordinator_cli, ["worker", "list", "--quarantined", "--json"])
    assert '"reason": "tampered reports"' in listed.output

    assert cli.invoke(coordinator_cli, ["worker", "release", alice.worker_id]).exit_code == 0
    assert alice.lease() is not None
    assert trust(coordinator, alice) == (0, 0, False)


def refuted(coordinator: Coordinator, digests: list[str]) -> list[bool]:
    """Each variant's `claim_refuted` flag, in the order given."""
    with coordinator.session() as session:
        flags = dict(session.execute(select(Variant.hash, Variant.claim_refuted).where(Variant.hash.in_(digests))).all())
    return [flags[digest] for digest in digests]


def record(coordinator: Coordinator, worker: Worker) -> tuple[float, int]:
    with coordinator.session() as session:
        row = session.get(WorkerRow, worker.worker_id)
        return row.report_bias, row.report_bias_checks


def test_a_verifier_that_reports_others_work_worse_within_noise_is_quarantined_and_its_rejections_reopened(
    coordinator: Coordinator, make_worker
) -> None:
    # Each run of the saboteur is 0.03 from the honest verifier's: inside the outlier limit
    # (3.5σ·√2) and the lone-dissent limit (2.5σ·√2 = 0.0354 at the track's σ of 0.01), so both
    # count and the candidate is rejected. No single run can be blamed, but the same excess every
    # time (0.03 / σ√2 in σ of a comparison, σ pooled with each candidate's spread, less the
    # record's drift of 1) adds up.
    alice, bob, saboteur = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("s1", "sab")
    calibrate(coordinator, [1.00, 1.00])
    expected = 0.0
    claims = []
    for n in range(1, 13):
        claims.append(alice.run(alice.lease(), 0.98)["variant_hash"])  # claims a gain of 2σ
        bob.run(bob.lease(), 0.985)  # measures a gain of 1.5σ
        sunk = saboteur.run(saboteur.lease(), 1.015)  # reports a loss as large
        sigma = pooled_sigma(0.01, sum_squares=n * 2 * 0.015**2, df=n)
        expected += 0.03 / (sigma * math.sqrt(2)) - 1.0
        assert record(coordinator, saboteur) == (pytest.approx(expected), n)
        assert trust(coordinator, saboteur)[2] is (n == 12)
        assert sunk["variant_status"] == ("candidate" if n == 12 else "rejected")
        if n == 1:
            # Inside the allowance, these claims are not refuted; mark the first as a saboteur's
            # larger excess would have, to see the re-opening clear it.
            with coordinator.session() as session:
                session.scalars(select(Variant).where(Variant.hash == claims[0])).one().claim_refuted = True
                session.commit()
    assert record(coordinator, bob) == (0.0, 0)
    assert trust(coordinator, alice)[1] == 0  # the author's claims were not refuted: it lost nothing
    refused = saboteur.post("/v1/leases", {"track_id": TRACK})
    assert (refused.status_code, refused.json()["code"]) == (403, "worker_quarantined")
    assert refused.json()["message"] == (
        "this worker is quarantined: reports others' work worse than other accounts measure it: its record"
        f" reached 8.5 (the bound is 8) over its last 12 comparisons, the last a verify run of {claims[-1][:12]}"
    )
    # Its runs no longer count: every claim it helped reject waits for another account again.
    for digest in claims:
        detail = variant(coordinator, digest)
        assert (detail["status"], detail["reason"]) == ("candidate", (
            "re-opened: a verifier of its rejection, s1, was quarantined for reporting others' work worse;"
            " awaiting 1 more verification(s) from other accounts"
        ))  # fmt: skip
    assert refuted(coordinator, claims) == [False] * 12  # no longer refuted: the measurement may be reused
    carol = make_worker("c1", "carol")
    verify = carol.lease()
    assert (verify["kind"], verify["variant"]["hash"] in claims) == ("verify", True)

    with coordinator.session() as session:
        release(session, worker_id=saboteur.worker_id)
        session.commit()
    assert record(coordinator, saboteur) == (0.0, 0)
    assert saboteur.lease() is not None


def test_a_quarantined_account_takes_no_new_worker(coordinator: Coordinator, make_worker, monkeypatch) -> None:
    make_worker("m1", "mallory")
    monkeypatch.setenv("ARN_DATABASE_URL", coordinator.settings.resolved_database_url)
    monkeypatch.setenv("ARN_DATA_DIR", str(coordinator.settings.data_dir))
    result = CliRunner().invoke(coordinator_cli, ["worker", "quarantine", "--account", "mallory", "--reason", "sybils"])
    assert result.exit_code == 0, result.output
    from shared.protocol import HardwareInfo, RegistrationPayload
    from shared.signing import SigningKey

    key = SigningKey.generate()
    payload = RegistrationPayload(
        public_key=key.public_key, name="m2", account="mallory", hardware=HardwareInfo(hardware_class="cpu"),
        issued_at=coordinator.clock(),
    ).model_dump(mode="json")
    response = coordinator.client.post("/v1/workers", json={"payload": payload, "signature": key.sign(payload)})
    assert (response.status_code, response.json()["message"]) == (403, "account mallory is quarantined: sybils")


def test_a_worker_quarantined_for_its_results_does_not_come_back_as_a_new_key_of_its_account(
    coordinator: Coordinator, make_worker
) -> None:
    bob = make_worker("b1", "bob")
    with coordinator.session() as session:
        row = session.get(WorkerRow, bob.worker_id)
        row.quarantined, row.quarantine_reason = True, "3 invalid results"
        session.commit()
    again = Worker(coordinator, "b1-again", "bob")
    refused = coordinator.client.post("/v1/workers", json=again.registration())
    assert (refused.status_code, refused.json()["code"], refused.json()["message"]) == (
        403, "worker_quarantined",
        "a machine of account bob is quarantined (3 invalid results); no new machine joins the account until a"
        " maintainer releases it",
    )  # fmt: skip
    with coordinator.session() as session:
        release(session, worker_id=bob.worker_id)
        session.commit()
    assert again.register().worker_id != bob.worker_id


def test_a_new_key_starts_from_the_worst_record_among_its_accounts_machines(
    coordinator: Coordinator, make_worker
) -> None:
    """A framer near its record's bound must not frame on from a fresh key of its account."""
    near, clean = make_worker("f1", "framers"), make_worker("f2", "framers")
    with coordinator.session() as session:
        row = session.get(WorkerRow, near.worker_id)
        row.invalid_results, row.report_bias, row.result_bias = 2, 6.0, 4.0
        session.commit()
    fresh = make_worker("f3", "framers")
    other = make_worker("o1", "other")
    with coordinator.session() as session:
        def record(worker: Worker) -> tuple[int, float, float]:
            row = session.get(WorkerRow, worker.worker_id)
            return row.invalid_results, row.report_bias, row.result_bias

        assert record(fresh) == (2, 6.0, 4.0)
        assert record(clean) == record(other) == (0, 0.0, 0.0)


def test_new_accounts_from_one_address_are_limited(coordinator: Coordinator, make_worker) -> None:
    coordinator.client.app.state.arn.settings.new_accounts_per_hour_per_ip = 2  # type: ignore[attr-defined]
    make_worker("a1", "alice")
    make_worker("b1", "bob")
    make_worker("a2", "alice")  # joining an existing account is not limited
    with pytest.raises(AssertionError, match="rate_limited"):
        make_worker("c1", "carol")


class TestSpotChecks:
    @pytest.fixture
    def spot_check_rate(self) -> float:
        return 1.0

    def test_a_hidden_gain_is_caught_becomes_a_candidate_and_once_verified_costs_its_hider_trust(
        self, coordinator: Coordinator, make_worker
    ) -> None:
        saboteur, bob, carol = make_worker("s1", "saboteur"), make_worker("b1", "bob"), make_worker("c1", "carol")
        calibrate(coordinator, [1.00, 1.00])
        explore = saboteur.lease()
        hidden = saboteur.run(explore, 1.05)  # reports its find 0.05 worse than its parent
        assert hidden["variant_status"] == "discarded"
        check = bob.lease()
        assert (check["kind"], check["variant"]["hash"], check["control"]["hash"]) == (
            "verify", hidden["variant_hash"], explore["variant"]["hash"]
        )
        bob.run(check, 0.90)  # another account measures a gain of 0.1
        detail = variant(coordinator, hidden["variant_hash"])
        assert detail["status"] == "candidate"
        assert detail["reason"] == (
            "a spot check measured a gain of 0.1000; awaiting 2 verification(s) from other accounts"
        )
        # One account's word costs nobody trust: a colluder could frame any reporter with it.
        assert trust(coordinator, saboteur)[1:] == (0, False)
        assert trust(coordinator, bob)[1] == 0
        # The quorum decides (the check, paired with the parent that is still the head, is one of
        # its runs), judged without the hider's claim: verifiers measuring far more than a claim is
        # what a hidden gain looks like. The promotion costs the hider a strike.
        lease = carol.lease()
        assert (lease["kind"], lease["variant"]["hash"]) == ("verify", hidden["variant_hash"])
        assert carol.run(lease, 0.90)["variant_status"] == "verified"
        assert coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"] == hidden["variant_hash"]
        assert trust(coordinator, saboteur)[1] == 1
        with coordinator.session() as session:
            row = session.get(WorkerRow, saboteur.worker_id)
            assert row.report_bias == pytest.approx(3.0 - 1.0)  # and the check went into its record

    def test_colluders_who_find_a_gain_in_an_honest_negative_result_pay_for_it_when_the_audit_refutes_it(
        self, coordinator: Coordinator, make_worker
    ) -> None:
        victim, ring1, ring2 = make_worker("v1", "victim"), make_worker("r1", "ring1"), make_worker("r2", "ring2")
        calibrate(coordinator, [1.00, 1.00])
        honest = victim.run(victim.lease(), 1.00)  # an honest negative result: no gain
        assert honest["variant_status"] == "discarded"
        for colluder in (ring1, ring2):  # the spot check, then the rest of the quorum: a gain of 0.1 that is not there
            lease = colluder.lease()
            assert (lease["kind"], lease["variant"]["hash"]) == ("verify", honest["variant_hash"])
            outcome = colluder.run(lease, 0.90, control_bpb=1.00)
        assert outcome["variant_status"] == "verified"
        assert trust(coordinator, victim)[1] == 1  # "hid a gain", as far as anyone can tell yet
        for name in ("h1", "h2"):  # the audit by accounts that took no part measures no gain
            auditor = make_worker(name, name)
            audit = auditor.lease()
            assert (audit["kind"], audit["variant"]["hash"]) == ("calibrate", honest["variant_hash"])
            auditor.run(audit, 1.00, control_bpb=1.00)
        assert variant(coordinator, honest["variant_hash"])["reason"].startswith("promotion revoked")
        assert trust(coordinator, victim) == (0, 0, False)  # the strike for hiding it is taken back, none added
        assert trust(coordinator, ring1)[1] == trust(coordinator, ring2)[1] == 1

    def test_a_consistent_negative_result_earns_its_reporter_trust(self, coordinator: Coordinator, make_worker) -> None:
        alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
        calibrate(coordinator, [1.00, 1.00])
        negative = alice.run(alice.lease(), 1.02)
        streak = trust(coordinator, alice)[0]
        bob.run(bob.lease(), 1.025)
        assert variant(coordinator, negative["variant_hash"])["status"] == "discarded"
        assert trust(coordinator, alice) == (streak + 1, 0, False)
        with coordinator.session() as session:
            row = session.scalars(select(Variant).where(Variant.hash == negative["variant_hash"])).one()
            assert row.spot_check is False  # checked once
        assert bob.lease()["kind"] == "explore"

    def test_a_careful_hider_is_quarantined_by_its_record_where_no_single_check_could_blame_it(
        self, coordinator: Coordinator, make_worker
    ) -> None:
        # Each find reported 0.01 worse than its parent, where another account measures it 0.02
        # better: 0.03 apart, inside a single check's limit (3.5σ·√2), so no check costs trust,
        # but each adds 0.03 / σ√2 = 2.12σ, less the drift of 1, to the hider's record.
        hider, bob = make_worker("h1", "hider"), make_worker("b1", "bob")
        calibrate(coordinator, [1.00, 1.00])
        step = 0.03 / (0.01 * math.sqrt(2)) - 1.0
        for n in range(1, 9):
            hidden = hider.run(hider.lease(), 1.01)
            bob.run(bob.lease(), 0.98)
            assert variant(coordinator, hidden["variant_hash"])["status"] == "discarded"
            assert record(coordinator, hider) == (pytest.approx(n * step), n)
            assert trust(coordinator, hider)[1:] == (0, n == 8)
        assert record(coordinator, bob) == (0.0, 0)
        assert trust(coordinator, bob) == (0, 0, False)


    def test_a_lazy_reporter_is_quarantined_by_its_record_of_reporting_its_own_changes_better(
        self, coordinator: Coordinator, make_worker
    ) -> None:
        # A lazy worker reports each change at its parent's score without training; each check finds
        # it 0.05 worse: 0.05 / σ√2 = 3.5σ, clipped at 3, less the drift of 1, on the lazy worker's
        # record of reporting its own results better, whose bound is 12. Each check is another
        # account's, and each checker's record of reporting worse takes the same step, once: nobody's
        # word alone blames.
        lazy = make_worker("l1", "lazy")
        checkers = [make_worker(f"c{n}", f"checker-{n}") for n in range(6)]
        calibrate(coordinator, [1.00, 1.00])
        for n, checker in enumerate(checkers, start=1):
            harmful = lazy.run(lazy.lease(), 1.00)
            assert harmful["variant_status"] == "discarded"
            check = checker.lease()
            assert (check["kind"], check["variant"]["hash"]) == ("verify", harmful["variant_hash"])
            checker.run(check, 1.05)
            assert own_record(coordinator, lazy) == (pytest.approx(2.0 * n), n)
            assert trust(coordinator, lazy)[2] is (n == 6)
        assert record(coordinator, lazy) == (0.0, 0)  # it reported nothing worse than measured
        for checker in checkers:
            assert record(coordinator, checker) == (pytest.approx(2.0), 1)
            assert trust(coordinator, checker)[2] is False
        refused = lazy.post("/v1/leases", {"track_id": TRACK})
        assert refused.status_code == 403
        assert refused.json()["message"].startswith(
            "this worker is quarantined: reports its own discarded changes better than other accounts reproduce"
            " them: its record reached 12.0 (the bound is 12) over its last 6 comparisons, the last a spot check of "
        )
        with coordinator.session() as session:
            release(session, worker_id=lazy.worker_id)
            session.commit()
        assert own_record(coordinator, lazy) == (0.0, 0)
        assert trust(coordinator, lazy)[2] is False

    def test_a_report_the_check_reproduces_leaves_the_reporters_record_at_zero(
        self, coordinator: Coordinator, make_worker
    ) -> None:
        alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
        calibrate(coordinator, [1.00, 1.00])
        alice.run(alice.lease(), 1.03)
        bob.run(bob.lease(), 1.035)  # 0.005 worse than reported: 0.35σ, under the drift
        assert own_record(coordinator, alice) == (0.0, 0)
        assert record(coordinator, bob) == (0.0, 0)


def own_record(coordinator: Coordinator, worker: Worker) -> tuple[float, int]:
    with coordinator.session() as session:
        row = session.get(WorkerRow, worker.worker_id)
        return row.result_bias, row.result_bias_checks


def test_a_refuted_claim_that_costs_no_strike_still_ends_its_authors_run_of_valid_results(
    coordinator: Coordinator, make_worker
) -> None:
    # One verifier measures 0.015 of a claimed 0.05, another reports 0.018 worse than the head (0.033
    # from the first: inside noise, short of a lone dissent): the claim is refuted (0.0515 short,
    # allowed 0.05), but not without the worse run, so its author takes no strike. It is still
    # not a valid result: a worker that lied on every claim could otherwise verify its way to trust.
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    with coordinator.session() as session:
        session.get(WorkerRow, alice.worker_id).valid_streak = 9
        session.commit()
    claim = alice.run(alice.lease(), 0.95)
    bob.run(bob.lease(), 0.985)
    sunk = carol.run(carol.lease(), 1.018)
    assert sunk["variant_status"] == "rejected"
    assert refuted(coordinator, [claim["variant_hash"]]) == [True]
    assert trust(coordinator, alice) == (0, 0, False)


def test_a_claim_is_not_weighed_against_a_head_promoted_after_it_and_its_author_is_not_blamed(
    coordinator: Coordinator, make_worker
) -> None:
    """A claim measures the gain over its parent. Once another change is promoted (say, a copy of
    this very change), the candidate is verified against that one instead, over which it may gain
    nothing: the candidate is rejected on the test, and the author's claim is not called a lie."""
    alice, dave = make_worker("a1", "alice"), make_worker("d1", "dave")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    holders = [make_worker(f"v{i}", f"holder{i}") for i in (1, 2)]
    held = [holder.lease() for holder in holders]  # both of the claim's verify slots, against the baseline
    assert [(lease["kind"], lease["variant"]["hash"]) for lease in held] == [("verify", claim["variant_hash"])] * 2
    rival = dave.run(dave.lease(), 0.90)  # another gain of 0.1 over the baseline
    for name in ("e1", "e2"):
        verifier = make_worker(name, name)
        lease = verifier.lease()
        assert (lease["kind"], lease["variant"]["hash"]) == ("verify", rival["variant_hash"])
        verifier.run(lease, 0.90)
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()["hash"] == rival["variant_hash"]
    calibrate(coordinator, [0.90, 0.90])  # the new head's audit: a gain of 0.1 over the baseline
    for holder, lease in zip(holders, held, strict=True):
        holder.run(lease, 0.90)  # paired with the baseline, which is no longer the head: set aside
    assert variant(coordinator, claim["variant_hash"])["status"] == "candidate"
    for name in ("w1", "w2"):
        verifier = make_worker(name, name)
        lease = verifier.lease()
        assert (lease["kind"], lease["variant"]["hash"], lease["control"]["hash"]) == (
            "verify", claim["variant_hash"], rival["variant_hash"]
        )
        verifier.run(lease, 0.90, control_bpb=0.90)  # no better than the new head
    detail = variant(coordinator, claim["variant_hash"])
    assert detail["status"] == "rejected"
    assert detail["reason"].startswith("no significant improvement: verifiers measured a gain of 0.0000 over 2 paired runs")
    assert trust(coordinator, alice) == (0, 0, False)


def test_crash_reports_reject_a_candidate_only_from_more_than_a_quorum_of_accounts_with_a_trusted_one_among_them(
    coordinator: Coordinator, make_worker
) -> None:
    """A failed run costs nobody trust, so failures reject only as a promotion would promote: from
    more than a quorum of accounts, a trusted worker among them where the track has one to give."""
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.00, 1.00])
    trusted = make_worker("t1", "trusted")
    with coordinator.session() as session:
        session.get(WorkerRow, trusted.worker_id).valid_streak = TRUSTED_STREAK
        session.commit()
    claim = alice.run(alice.lease(), 0.90)
    crashers = [make_worker(f"m{i}", f"mal{i}") for i in (1, 2, 3)]
    for crasher in crashers:
        lease = crasher.lease()
        assert (lease["kind"], lease["variant"]["hash"]) == ("verify", claim["variant_hash"])
        assert crasher.run(lease, None, status="crashed")["variant_status"] == "candidate"  # type: ignore[arg-type]
    assert trust(coordinator, alice) == (0, 0, False)
    lease = trusted.lease()
    assert (lease["kind"], lease["variant"]["hash"]) == ("verify", claim["variant_hash"])
    assert trusted.run(lease, None, status="crashed")["variant_status"] == "rejected"  # type: ignore[arg-type]
    assert variant(coordinator, claim["variant_hash"])["reason"] == (
        "not reproduced: verify runs failed on the machines of 4 accounts, the last: train() raised RuntimeError: boom"
    )
