"""Three `coordinator serve` replicas on one PostgreSQL and one Redis, with 200 simulated workers
(bench/simulate.py: real keys, signed runs, the real HTTP API) whose requests go to a replica drawn
at random; one replica is killed with SIGKILL while the workers submit. Afterwards every invariant
the services promise (their docstrings) is checked from the database, and the replicas left
answer every read the same way."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench import simulate
from bench.simnet.coordinator import TRACK, TrackPolicy, serve
from coordinator.models import Lease, Run, Track, Variant
from coordinator.services.leases import head_audited
from coordinator.services.verdicts import Decision
from coordinator.services.verification import current_verdict
from shared.protocol import LeaseKind, RunStatus, VariantStatus
from tests.services import require_postgres, require_redis

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WORKERS = 200
RUNS = 700
KILL_AFTER_RUNS = 300


async def _simulate_and_kill_one(sim: simulate.Simulation, victim: Any, victim_url: str) -> None:
    """Run the network; once it has done KILL_AFTER_RUNS runs, SIGKILL one replica and take it out
    of the routing, as a load balancer's health check would (requests in flight to it fail and are
    retried on the others)."""
    network = asyncio.create_task(sim.run())
    while not network.done() and sim.tally.runs < KILL_AFTER_RUNS:
        await asyncio.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    sim.urls.remove(victim_url)
    await network


def _reads(url: str) -> dict[str, Any]:
    paths = [f"/v1/tracks/{TRACK}/leaderboard", f"/v1/tracks/{TRACK}/head", f"/v1/tracks/{TRACK}/log", "/v1/tracks"]
    return {path: httpx.get(f"{url}{path}", timeout=30).json() for path in paths}


def test_three_replicas_under_200_workers_and_a_kill_keep_every_invariant(tmp_path: Path) -> None:
    postgres, redis = require_postgres(), require_redis()
    args = simulate._parse_args([
        "--workers", str(WORKERS), "--runs", str(RUNS), "--landscape", "planted", "--gain", "8",
        "--plant-rate", "0.5", "--seed", "11", "--quorum", "2",
    ])  # fmt: skip
    policy = TrackPolicy(quorum=2, calibration_runs=2, noise_sigma=0.02)
    with serve(database=postgres, workdir=tmp_path, policy=policy, replicas=3, redis_url=redis) as served:
        sim = simulate.Simulation(args, list(served.urls))
        asyncio.run(_simulate_and_kill_one(sim, served.processes[2], served.urls[2]))
        assert served.processes[2].wait(timeout=5) == -signal.SIGKILL
        survivors = served.urls[:2]
        answers = [_reads(url) for url in survivors]
        engine = sqlalchemy.create_engine(served.database_url)
        try:
            with Session(engine) as session:
                _check_invariants(session, sim)
        finally:
            engine.dispose()

    assert sim.tally.runs >= RUNS
    assert answers[0] == answers[1], "two replicas answer a read differently"
    board = answers[0][f"/v1/tracks/{TRACK}/leaderboard"]["entries"]
    assert any(entry["hash"] in sim.tally.explored for entry in board), simulate.figures(sim)


def _check_invariants(session: Session, sim: simulate.Simulation) -> None:
    track = session.get(Track, TRACK)
    assert track is not None

    # Each lease's result counts once, and no acknowledged result is lost.
    per_lease = Counter(session.scalars(select(Run.lease_id)))
    assert max(per_lease.values()) == 1
    assert set(per_lease) == sim.tally.accepted, "the results in the database are not those the workers were told were taken"
    finished = session.scalar(select(func.count()).select_from(Lease).where(Lease.state == "completed"))
    assert finished == len(per_lease)

    variants = list(session.scalars(select(Variant).where(Variant.track_id == TRACK)))
    for variant in variants:
        verifies = list(session.scalars(select(Run).where(Run.variant_id == variant.id, Run.kind == LeaseKind.verify.value)))
        ok = [run for run in verifies if run.status == RunStatus.ok.value]
        # A candidate never gets more valid verify runs against one head than it may use, and one
        # worker verifies it once.
        by_control = Counter(run.lease.control_variant_id for run in ok)
        assert all(count <= track.max_verifications for count in by_control.values()), (variant.hash, by_control)
        assert len({(run.worker_id, run.lease.control_variant_id) for run in ok}) == len(ok), variant.hash
        # A head is calibrated by as many runs as the track asks for, never more.
        calibrations = session.scalar(
            select(func.count()).select_from(Run).where(
                Run.variant_id == variant.id, Run.kind == LeaseKind.calibrate.value, Run.status == RunStatus.ok.value
            )
        )
        assert calibrations <= track.calibration_runs, (variant.hash, calibrations)
        if variant.status == VariantStatus.verified.value and variant.id != track.baseline_variant_id:
            counted = [entry["run"] for entry in variant.verified_by or []]
            assert len(counted) == len(set(counted)) >= track.quorum
            assert set(counted) <= {run.id for run in ok}
        if variant.status == VariantStatus.candidate.value:
            # Never stranded: what its runs say now is "wait" (more runs will be leased), or a
            # promotion held back until the head's audit.
            _paired, verdict = current_verdict(session, track, variant)
            assert verdict.decision is Decision.wait or (
                verdict.decision is Decision.promote and not head_audited(session, track)
            ), (variant.hash, verdict)

    # The head is the last promotion, and promotions form one line: no two replaced the same head.
    promoted = sorted(
        (v for v in variants if v.status == VariantStatus.verified.value and v.id != track.baseline_variant_id),
        key=lambda v: (v.verified_at, v.id),
    )
    if promoted:
        assert track.head_variant_id == promoted[-1].id
        replaced = [v.previous_head_id for v in promoted]
        assert len(replaced) == len(set(replaced)), "two promotions replaced the same head"
        assert replaced[0] == track.baseline_variant_id
        assert replaced[1:] == [v.id for v in promoted[:-1]]
    else:
        assert track.head_variant_id == track.baseline_variant_id
