from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from coordinator.models import Lease
from coordinator.services.leases import LEASE_LIFETIME_FACTOR
from coordinator.services.tracks import TrackParams
from tests.api.conftest import NOISE_SIGMA, TRACK, Coordinator, Worker, add_track, calibrate


def test_calibration_comes_first_takes_two_accounts_and_sets_the_heads_shown_value(
    coordinator: Coordinator, make_worker
) -> None:
    alice1, alice2, bob = make_worker("a1", "alice"), make_worker("a2", "alice"), make_worker("b1", "bob")
    first = alice1.lease()
    assert first["kind"] == "calibrate" and first["control"] is None
    # One account gives at most half of a head's calibration runs: its other machine explores.
    assert alice2.lease()["kind"] == "explore"
    second = bob.lease()
    assert second["kind"] == "calibrate"
    alice1.run(first, 1.00)
    bob.run(second, 1.02)
    track = coordinator.client.get(f"/v1/tracks/{TRACK}").json()
    assert track["head_val_bpb"] == pytest.approx(1.01)
    # σ of a paired difference is the track's configured one until verifications measure it.
    assert track["noise_sigma"] == NOISE_SIGMA


def test_an_explore_is_paired_with_its_parent_once_then_reuses_that_measurement(
    coordinator: Coordinator, make_worker
) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.00, 1.00])
    first = alice.lease()
    assert first["kind"] == "explore" and first["control"]["hash"] == first["variant"]["hash"]
    # The child scored 0.995 against its parent's 1.005 on this machine with this seed: a gain of 0.01,
    # not beyond the claim margin of 1σ (0.01).
    assert alice.run(first, 0.995, control_bpb=1.005)["variant_status"] == "discarded"
    second = alice.lease()
    assert (second["control"], second["seed"]) == (None, first["seed"])
    # Judged against the same machine's 1.005, not the head's calibrated 1.00: a gain of 0.025.
    assert alice.run(second, 0.98)["variant_status"] == "candidate"


def test_a_refuted_claim_withdraws_the_others_on_its_measurement_of_the_parent_which_is_not_reused(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])

    def invalid_results() -> int:
        with coordinator.session() as session:
            from coordinator.models import Worker as WorkerRow

            return session.get(WorkerRow, alice.worker_id).invalid_results

    # Alice's machine was busy while it measured the head (1.06, not 1.00): both children look better.
    first = alice.lease()
    first_claim = alice.run(first, 0.99, control_bpb=1.06)
    second = alice.lease()
    assert second["control"] is None and second["seed"] == first["seed"]
    second_claim = alice.run(second, 0.985)
    assert first_claim["variant_status"] == second_claim["variant_status"] == "candidate"

    claims = {claim["variant_hash"] for claim in (first_claim, second_claim)}
    # Bob measures no gain in the one he verifies: its claim is refuted, and alice loses trust...
    verify = bob.lease()
    assert verify["kind"] == "verify"
    assert bob.run(verify, 1.00)["variant_status"] == "rejected"
    assert invalid_results() == 1
    # ...and the other claim on that measurement is withdrawn unverified: no verify runs, no strike.
    [other] = claims - {verify["variant"]["hash"]}
    detail = coordinator.client.get(f"/v1/variants/{other}?track_id={TRACK}").json()
    assert detail["status"] == "unverified"
    assert verify["variant"]["hash"][:12] in detail["reason"]
    assert invalid_results() == 1
    # The refuted measurement is not reused: alice measures the head again, with a new seed.
    third = alice.lease()
    assert third["control"] is not None and third["seed"] != first["seed"]
    # A claim on the fresh measurement that is refuted again costs trust again.
    assert alice.run(third, 0.93, control_bpb=1.00)["variant_status"] == "candidate"
    assert bob.run(bob.lease(), 1.00)["variant_status"] == "rejected"
    assert invalid_results() == 2


def test_a_liar_that_batches_fake_claims_on_one_measurement_costs_one_verification_per_strike(
    coordinator: Coordinator, make_worker
) -> None:
    liar, bob = make_worker("a1", "mallory"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    verifications = 0
    for strike in range(1, 4):
        # A fresh measurement of the head, then three more fake gains of 0.2 judged against it.
        fresh = liar.lease()
        assert fresh["control"] is not None
        claims = [liar.run(fresh, 0.80, control_bpb=1.00)["variant_hash"]]
        for _ in range(3):
            reused = liar.lease()
            assert reused["control"] is None and reused["seed"] == fresh["seed"]
            claims.append(liar.run(reused, 0.80)["variant_hash"])
        verify = bob.lease()
        assert verify["kind"] == "verify" and verify["variant"]["hash"] in claims
        assert bob.run(verify, 1.00)["variant_status"] == "rejected"
        verifications += 1
        statuses = {h: coordinator.client.get(f"/v1/variants/{h}?track_id={TRACK}").json()["status"] for h in claims}
        assert sorted(statuses.values()) == ["rejected", "unverified", "unverified", "unverified"]
        with coordinator.session() as session:
            from coordinator.models import Worker as WorkerRow

            assert session.get(WorkerRow, liar.worker_id).invalid_results == strike
    refused = liar.post("/v1/leases", {"track_id": TRACK})
    assert (refused.status_code, refused.json()["code"]) == (403, "worker_quarantined")
    assert verifications == 3  # twelve fake claims, three verify runs


def test_verify_lease_never_goes_to_author_account(coordinator: Coordinator, make_worker) -> None:
    alice1, alice2, bob = make_worker("a1", "alice"), make_worker("a2", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice1.run(alice1.lease(), 0.90)
    assert claim["variant_status"] == "candidate"

    # The author's other machine is never asked to verify its own account's claim...
    for worker in (alice1, alice2, alice2):
        lease = worker.lease()
        assert lease["kind"] == "explore"
        assert worker.post(f"/v1/leases/{lease['id']}/release", {"reason": "test"}).status_code == 204
    # ...while another account's worker is.
    verify = bob.lease()
    assert (verify["kind"], verify["variant"]["hash"]) == ("verify", claim["variant_hash"])
    head = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()
    assert verify["control"]["hash"] == head["hash"]  # paired with the head, one seed for both


def test_an_account_that_reported_the_same_source_does_not_verify_it(coordinator: Coordinator, make_worker) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    bob2 = make_worker("b2", "bob")
    calibrate(coordinator, [1.00, 1.00])
    alice_lease, bob_lease = alice.lease(), bob.lease()
    assert (alice_lease["kind"], bob_lease["kind"]) == ("explore", "explore")
    # Both agents land on the same source at once, and both report it.
    source = "def train(ctx):\n    raise NotImplementedError  # the same idea, found twice\n"
    claim = alice.run(alice_lease, 0.90, source=source)
    assert bob.run(bob_lease, 0.91, source=source)["variant_hash"] == claim["variant_hash"]

    assert bob2.lease()["kind"] == "explore"  # a claimant's account never verifies the claim
    verify = carol.lease()
    assert (verify["kind"], verify["variant"]["hash"]) == ("verify", claim["variant_hash"])


def test_a_candidate_is_promoted_on_the_verifiers_mean_not_the_claim(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    verify = bob.lease()
    assert verify["kind"] == "verify" and verify["variant"]["hash"] == claim["variant_hash"]
    assert verify["seed"] != 0
    assert bob.run(verify, 0.92)["variant_status"] == "verified"

    board = coordinator.client.get(f"/v1/tracks/{TRACK}/leaderboard").json()
    top = board["entries"][0]
    assert (top["hash"], top["val_bpb"]) == (claim["variant_hash"], 0.92)
    assert abs(top["delta_vs_baseline"] - (-0.08)) < 1e-9
    assert top["author"] == "a1 (alice)"
    head = coordinator.client.get(f"/v1/tracks/{TRACK}/head").json()
    assert head["hash"] == claim["variant_hash"]
    # The next exploration starts from the new head.
    assert alice.lease()["variant"]["hash"] == claim["variant_hash"]


def test_a_claim_the_verifiers_cannot_reproduce_is_rejected_and_the_author_loses_trust(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.50)
    result = bob.run(bob.lease(), 1.01)  # worse than the head it was paired with
    assert result["variant_status"] == "rejected"
    detail = coordinator.client.get(f"/v1/variants/{claim['variant_hash']}?track_id={TRACK}").json()
    assert detail["reason"] == (
        "claim not reproduced: claimed a gain of 0.5000, verifiers measured -0.0100 (allowed shortfall 0.0500)"
    )
    with coordinator.session() as session:
        from coordinator.models import Worker as WorkerRow

        assert session.get(WorkerRow, alice.worker_id).valid_streak == 0
        assert session.get(WorkerRow, alice.worker_id).invalid_results == 1
        assert session.get(WorkerRow, bob.worker_id).valid_streak == 1


def test_an_improvement_within_noise_takes_more_verifiers_then_is_rejected_without_blame(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.98)  # a gain of 0.02 on alice's machine: beyond the 1σ margin
    assert claim["variant_status"] == "candidate"
    assert bob.run(bob.lease(), 1.00)["variant_status"] == "candidate"  # no gain once: not yet conclusive
    detail = coordinator.client.get(f"/v1/variants/{claim['variant_hash']}?track_id={TRACK}").json()
    assert detail["reason"] == "undecided after 1 paired runs (gain 0.0000); one more is needed"
    assert carol.run(carol.lease(), 1.00)["variant_status"] == "rejected"
    log = coordinator.client.get(f"/v1/tracks/{TRACK}/log").json()["entries"]
    assert log[0]["reason"] == "no significant improvement: verifiers measured a gain of 0.0000 over 2 paired runs (σ 0.0100)"
    with coordinator.session() as session:
        from coordinator.models import Worker as WorkerRow

        assert session.get(WorkerRow, alice.worker_id).invalid_results == 0


def test_a_claim_no_better_than_the_head_is_discarded_and_never_verified(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    assert alice.run(alice.lease(), 1.10)["variant_status"] == "discarded"
    assert bob.lease()["kind"] == "explore"


def test_lease_expires_and_its_work_is_reissued(coordinator: Coordinator, make_worker) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    stalled = bob.lease()
    assert stalled["kind"] == "verify"
    # Quorum 1 is taken by bob's active lease, so carol explores instead.
    assert carol.lease()["kind"] == "explore"

    coordinator.clock.advance(2 * (10 + 2) + 60 + 1)  # two runs of budget + grace, the slack, then some
    reissued = carol.lease()
    assert reissued["kind"] == "verify" and reissued["variant"]["hash"] == claim["variant_hash"]
    with coordinator.session() as session:
        states = dict(session.execute(select(Lease.worker_id, Lease.state).where(Lease.kind == "verify")).all())
    assert states == {bob.worker_id: "expired", carol.worker_id: "active"}

    late = bob.submit(bob.report(stalled, val_bpb=0.9))
    assert late.status_code == 410
    assert late.json()["code"] == "lease_expired"
    with coordinator.session() as session:
        assert session.scalars(select(Lease.state).where(Lease.id == stalled["id"])).one() == "expired"
    assert carol.run(reissued, 0.91)["variant_status"] == "verified"


def test_heartbeats_hold_a_lease_only_up_to_its_end_then_its_work_is_handed_out_again(
    coordinator: Coordinator, make_worker
) -> None:
    """Heartbeats alone must not hold a candidate's verify slot (or a head's audit) for ever."""
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    held = bob.lease()
    assert held["kind"] == "verify"
    end = LEASE_LIFETIME_FACTOR * (2 * (10 + 2) + 60)  # four times its first lifetime: two runs and the slack
    accepted = []
    for _ in range(40):  # a heartbeat every 30 s for 20 minutes
        coordinator.clock.advance(30)
        response = bob.post(f"/v1/leases/{held['id']}/heartbeat", {"phase": "training"})
        if response.status_code != 200:
            assert (response.status_code, response.json()["code"]) == (410, "lease_expired")
            break
        accepted.append(30 * (len(accepted) + 1))
        deadline = datetime.fromisoformat(response.json()["deadline"])
        assert deadline <= coordinator.clock() - timedelta(seconds=accepted[-1] - end)
    assert accepted[-1] < end <= accepted[-1] + 30  # the first heartbeat past the end is refused
    reissued = carol.lease()
    assert reissued["kind"] == "verify" and reissued["variant"]["hash"] == claim["variant_hash"]
    assert bob.submit(bob.report(held, val_bpb=0.9)).status_code == 410
    assert carol.run(reissued, 0.91)["variant_status"] == "verified"


def test_heartbeats_keep_a_long_run_alive(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    for _ in range(4):
        coordinator.clock.advance(40)
        response = alice.post(f"/v1/leases/{lease['id']}/heartbeat", {"phase": "training", "step": 3, "loss": 2.5})
        assert response.status_code == 200, response.text
    coordinator.clock.advance(40)  # 200 s after issue: past the original 72 s deadline
    assert alice.run(lease, 1.0)["variant_status"] == "verified"


def test_heartbeat_after_expiry_says_lease_expired(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    coordinator.clock.advance(1000)
    response = alice.post(f"/v1/leases/{lease['id']}/heartbeat", {"phase": "training"})
    assert response.status_code == 410
    assert response.json()["code"] == "lease_expired"


def test_released_work_is_handed_out_again(coordinator: Coordinator, make_worker) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    first = alice.lease()
    assert first["kind"] == "calibrate"
    assert alice.post(f"/v1/leases/{first['id']}/release", {"reason": "agent gave up"}).status_code == 204
    assert alice.post(f"/v1/leases/{first['id']}/release", {"reason": "again"}).status_code == 204
    assert bob.lease()["kind"] == "calibrate"
    assert carol.lease()["kind"] == "calibrate"  # both slots free again: the released one no longer counts
    late = alice.submit(alice.report(first, val_bpb=1.0))
    assert late.json()["code"] == "lease_released"


def test_a_worker_of_another_hardware_class_is_refused_a_pinned_track(coordinator: Coordinator) -> None:
    from shared.protocol import HardwareInfo, RegistrationPayload
    from shared.signing import SigningKey

    key = SigningKey.generate()
    payload = RegistrationPayload(
        public_key=key.public_key, name="gpu", account="dave", hardware=HardwareInfo(hardware_class="h100-80gb"),
        issued_at=coordinator.clock(),
    ).model_dump(mode="json")
    token = coordinator.client.post("/v1/workers", json={"payload": payload, "signature": key.sign(payload)}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    response = coordinator.client.post("/v1/leases", json={"track_id": TRACK}, headers=headers)
    assert response.status_code == 403
    assert "pinned to hardware class 'cpu'" in response.json()["message"]
    assert coordinator.client.post("/v1/leases", json={}, headers=headers).json()["lease"] is None


def test_a_crashed_verify_run_is_reissued_and_only_repeated_crashes_reject(coordinator: Coordinator, make_worker) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    # A crash may be the verifier's machine: it decides nothing, and the slot goes to someone else.
    assert bob.run(bob.lease(), None, status="crashed")["variant_status"] == "candidate"  # type: ignore[arg-type]
    verify = carol.lease()
    assert (verify["kind"], verify["variant"]["hash"]) == ("verify", claim["variant_hash"])
    # More failures than the quorum: the variant itself is the problem.
    assert carol.run(verify, None, status="crashed")["variant_status"] == "rejected"  # type: ignore[arg-type]
    detail = coordinator.client.get(f"/v1/variants/{claim['variant_hash']}?track_id={TRACK}").json()
    assert detail["reason"].startswith("not reproduced: verify runs failed on the machines of 2 accounts")


def test_lease_events_are_logged_with_the_lease_and_worker_ids(
    coordinator: Coordinator, make_worker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coordinator")
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    done = alice.lease()
    alice.run(done, 1.0)
    quiet = alice.lease()
    coordinator.clock.advance(600)
    bob.lease()

    def lines(lease_id: str) -> list[str]:
        return [record.getMessage() for record in caplog.records if lease_id in record.getMessage()]

    assert any(f"to worker {alice.worker_id}" in line for line in lines(done["id"]))
    assert any(f"result ok from worker {alice.worker_id}" in line for line in lines(done["id"]))
    assert any(f"by worker {alice.worker_id} expired" in line for line in lines(quiet["id"]))


def test_on_a_two_account_network_the_verifier_calibrates_and_promotions_go_on(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    first, second = alice.lease(), bob.lease()
    assert (first["kind"], second["kind"]) == ("calibrate", "calibrate")
    alice.run(first, 1.00)
    bob.run(second, 1.00)
    claim = alice.run(alice.lease(), 0.90)
    assert bob.run(bob.lease(), 0.90)["variant_status"] == "verified"
    # No account took no part in the promotion: the verifier's gives the new head its shown value
    # (the author's never does), and nothing waits for an audit that cannot happen.
    assert alice.lease()["kind"] == "explore"
    calibration = bob.lease()
    assert (calibration["kind"], calibration["variant"]["hash"]) == ("calibrate", claim["variant_hash"])
    bob.run(calibration, 0.91)
    next_claim = alice.run(alice.lease(), 0.80, control_bpb=0.90)
    assert next_claim["variant_status"] == "candidate"
    assert bob.run(bob.lease(), 0.80, control_bpb=0.90)["variant_status"] == "verified"


@pytest.mark.parametrize(
    ("budget_s", "interval_s"),
    [(10.0, 10.0), (60.0, 10.0), (300.0, 30.0), (3600.0, 60.0)],
    ids=["short-budget", "cpu-tiny", "five-minutes", "an-hour"],
)
def test_a_lease_asks_for_a_heartbeat_per_tenth_of_its_budget_between_the_setting_and_a_minute(
    coordinator: Coordinator, track_params: TrackParams, budget_s: float, interval_s: float
) -> None:
    add_track(coordinator, dataclasses.replace(track_params, id="other", name="Other", time_budget_s=budget_s))
    lease = Worker(coordinator, "a1", "alice", track_id="other").register().lease()
    assert coordinator.settings.heartbeat_interval_s == 10.0  # the shortest interval a lease asks for
    assert lease is not None
    assert (lease["track_id"], lease["heartbeat_interval_s"]) == ("other", interval_s)


def test_heartbeats_write_the_deadline_once_per_half_lifetime_and_always_keep_half_a_lifetime_ahead(
    coordinator: Coordinator, make_worker
) -> None:
    alice = make_worker("a1", "alice")
    lease = alice.lease()
    ttl = 10.0 + 2.0 + 60.0  # the track's budget and grace, and the coordinator's slack
    deadlines = []
    for _ in range(20):  # one every 10 s, for 200 s
        coordinator.clock.advance(10)
        response = alice.post(f"/v1/leases/{lease['id']}/heartbeat", {"phase": "training"})
        deadline = datetime.fromisoformat(response.json()["deadline"])
        assert (deadline - coordinator.clock()).total_seconds() >= ttl / 2
        deadlines.append(deadline)
    assert len(set(deadlines)) == 6  # the first, then written at 40, 80, 120, 160 and 200 s: 5 writes for 20 heartbeats
    assert alice.run(lease, 1.0)["variant_status"] == "verified"


def test_fresh_keys_of_one_account_neither_redraw_its_verify_work_nor_reset_its_hand_backs(
    coordinator: Coordinator, make_worker
) -> None:
    """A ring walking the queue to its own candidate: the draw is by account, and so is the count of
    verify leases handed back in a day (three), whatever keys the account registers."""
    calibrate(coordinator, [1.00, 1.00])
    author = make_worker("a1", "author")  # never sent to verify its own claims: it explores on
    claims = {author.run(author.lease(), 0.90)["variant_hash"] for _ in range(5)}
    assert len(claims) == 5
    first = make_worker("r1", "ring").lease()
    redraw = make_worker("r2", "ring")
    handed_back = []
    for i in range(3):
        key = make_worker(f"rk{i}", "ring")
        lease = key.lease()
        assert lease["kind"] == "verify" and lease["variant"]["hash"] in claims
        assert key.post(f"/v1/leases/{lease['id']}/release", {"reason": "busy"}).status_code == 204
        handed_back.append(lease["variant"]["hash"])
    assert first["variant"]["hash"] not in handed_back and len(set(handed_back)) == 3  # the account's next, in turn
    assert redraw.lease()["kind"] == "explore"  # three hand-backs by the account: no verify work today
    assert make_worker("x1", "other").lease()["kind"] == "verify"  # another account's are its own
