"""A network simulator that drives the real coordinator through its real HTTP API.

N simulated workers (asyncio; real Ed25519 keys, signed reports, the real offline agent proposing
real train.py changes) train in a synthetic landscape (bench/simnet/landscape.py) instead of
running torch: a run's score is the variant's known true score plus seed noise (partly cancelled
by a shared seed), a per-machine offset and load episodes. Adversaries are set by fraction.

Simulated time: every training run takes one unit. A lease's result is reported when its runs
would have finished, so each worker's clock is the runs it has done, and the network's time is
the clock at which something happened.

    python bench/simulate.py --workers 200 --landscape null --runs 20000 --database postgresql+psycopg://...
    python bench/simulate.py --workers 64 --landscape planted --adversary liar=0.1 --json
    python bench/simulate.py --fast            # seconds: for the test suite

Reports false promotions (promoted, yet not truly better than the head it replaced), the power on
planted gains, the share of runs spent on verification and calibration and on paired references,
the head's true score against runs spent, the time to a target, adversaries quarantined (and
after how many of their runs), and the coordinator's latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from bench.simnet.actors import KINDS, Actor, Report, assign_kinds, registration, signed_run  # noqa: E402
from bench.simnet.coordinator import HARDWARE_CLASS, TRACK, TrackPolicy, serve  # noqa: E402
from bench.simnet.landscape import Landscape, Machine, Noise, constants  # noqa: E402
from shared.hashing import variant_hash  # noqa: E402
from shared.signing import SigningKey  # noqa: E402
from worker.agents.base import ProposalContext  # noqa: E402
from worker.agents.offline import OfflineAgent  # noqa: E402

CONCURRENCY = 48  # requests in flight at once


@dataclass
class Explored:
    hash: str
    parent: str
    true_child: float
    true_parent: float
    by: str  # the reporting worker's kind


@dataclass
class Tally:
    trainings: dict[str, int] = field(default_factory=lambda: {"explore": 0, "reference": 0, "verify": 0, "calibrate": 0})
    explored: dict[str, Explored] = field(default_factory=dict)
    verified_hashes: set[str] = field(default_factory=set)  # variants that got a verify lease
    verify_controls: dict[str, set[str]] = field(default_factory=dict)  # variant -> heads it was paired with
    latencies: list[float] = field(default_factory=list)
    head_trace: list[tuple[int, int, float]] = field(default_factory=list)  # (time, runs, head true)
    time_to_target: int | None = None
    leases: int = 0
    accepted: set[str] = field(default_factory=set)  # leases whose result the coordinator took (200)
    transport_errors: int = 0
    refused: int = 0  # results the coordinator answered with anything but 200

    @property
    def runs(self) -> int:
        return sum(self.trainings.values())


class Simulation:
    def __init__(self, args: argparse.Namespace, urls: list[str]) -> None:
        self.args, self.urls = args, urls
        self.rng = random.Random(args.seed)
        self.routing = random.Random(args.seed + 1)  # which replica answers: apart, so the network's draws stay the same
        baseline = (REPO_ROOT / "baseline" / "train.py").read_text()
        self.world = Landscape(
            kind=args.landscape, baseline=constants(baseline), sigma_seed=args.sigma_seed, gain=args.gain,
            plant_rate=args.plant_rate, seed=args.seed,
        )
        self.noise = Noise(
            sigma_seed=args.sigma_seed, shared_fraction=args.shared_fraction,
            sigma_machine=args.machine_sigmas * args.sigma_seed, load_rate=args.load_rate,
        )
        self.agent = OfflineAgent(strategy="random")
        self.tally = Tally()
        self.target = self.world.true(baseline) + args.target_fraction * (self.world.best() - self.world.true(baseline))
        self.head_true = self.world.true(baseline)
        self.sources: dict[str, str] = {}

    # --- HTTP ---------------------------------------------------------------------------------

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, retried as a worker retries: after 429 or 503 as the coordinator asks, and
        after a timeout or a dropped connection (a result is idempotent; a lease asked for twice
        leaves the first to expire). Each try goes to a replica drawn at random, as a load
        balancer would send it."""
        for attempt in range(20):
            began = time.perf_counter()
            try:
                response = await client.request(method, f"{self.routing.choice(self.urls)}{path}", **kwargs)
            except httpx.TransportError:
                self.tally.transport_errors += 1
                await asyncio.sleep(min(30.0, 2.0**attempt))
                continue
            self.tally.latencies.append(time.perf_counter() - began)
            if response.status_code not in (429, 503):
                return response
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        raise RuntimeError(f"{method} {path}: no answer after 20 tries")

    async def _register(self, client: httpx.AsyncClient, actor: Actor, key: SigningKey) -> tuple[str, str]:
        body = registration(key, name=f"sim-{actor.index}", account=actor.account, hardware_class=HARDWARE_CLASS)
        response = await self._call(client, "POST", "/v1/workers", json=body)
        response.raise_for_status()
        answer = response.json()
        return str(answer["worker_id"]), str(answer["token"])

    # --- the workers --------------------------------------------------------------------------

    def _actors(self) -> list[Actor]:
        fractions = dict(self.args.adversary)
        kinds = assign_kinds(self.args.workers, fractions, self.rng)
        ring: set[str] = set()
        actors = []
        sybils = itertools.count()
        for index, kind in enumerate(kinds):
            if kind == "sybil":
                account = f"ring-{next(sybils) % self.args.ring_accounts}"
            else:
                account = f"volunteer-{index // self.args.machines_per_account}"
            machine = Machine(offset=self.rng.gauss(0.0, self.noise.sigma_machine), rng=random.Random(self.rng.random()))
            actors.append(Actor(index, kind, account, machine, random.Random(self.rng.random()),
                                ring=ring if kind == "sybil" else set()))  # fmt: skip
        return actors

    def _count(self, actor: Actor, lease: dict[str, Any], report: Report) -> None:
        kind = lease["kind"]
        paired = report.control is not None
        if kind == "explore":
            self.tally.trainings["explore"] += 1
            self.tally.trainings["reference"] += 1 if paired else 0
            assert report.source is not None and report.true_child is not None and report.true_parent is not None
            digest = variant_hash(report.source)
            self.tally.explored.setdefault(
                digest, Explored(digest, lease["variant"]["hash"], report.true_child, report.true_parent, actor.kind)
            )
            self.sources[digest] = report.source
        elif kind == "verify":
            self.tally.trainings["verify"] += 2 if paired else 1
            self.tally.verified_hashes.add(lease["variant"]["hash"])
            if lease.get("control"):
                self.tally.verify_controls.setdefault(lease["variant"]["hash"], set()).add(lease["control"]["hash"])
        else:
            self.tally.trainings["calibrate"] += 2 if paired else 1

    async def _step(self, client: httpx.AsyncClient, state: dict[str, Any], now: int) -> int | None:
        """Report what is due, take the next lease and work it out; the time the worker is next
        free, or None once it is out of the network (quarantined)."""
        actor: Actor = state["actor"]
        headers = {"Authorization": f"Bearer {state['token']}"}
        if state.get("pending") is not None:
            lease, report = state.pop("pending")
            signed = signed_run(state["key"], state["worker_id"], lease, report)
            response = await self._call(client, "POST", f"/v1/leases/{lease['id']}/result", json=signed, headers=headers)
            if response.status_code == 200:
                self.tally.accepted.add(lease["id"])
                actor.runs += 1
                self._count(actor, lease, report)
            else:
                self.tally.refused += 1
                if not self.tally.accepted and self.tally.refused > 2 * self.args.workers:
                    # Nothing counts, so the run budget would never be spent: stop with the reason.
                    raise RuntimeError(f"the coordinator refuses every result: {response.status_code} {response.text[:300]}")
        response = await self._call(client, "POST", "/v1/leases", json={"track_id": TRACK}, headers=headers)
        if response.status_code == 403 and response.json().get("code") == "worker_quarantined":
            actor.quarantined_after = actor.runs
            actor.quarantine_reason = response.json().get("message")
            return None
        response.raise_for_status()
        lease = response.json()["lease"]
        if lease is None:
            return now + 1
        self.tally.leases += 1
        report = actor.answer(lease, self.world, self.noise, self.agent)
        state["pending"] = (lease, report)
        return now + max(1, report.trainings)

    async def _observe_head(self, client: httpx.AsyncClient, now: int) -> None:
        response = await self._call(client, "GET", f"/v1/tracks/{TRACK}/head")
        head = response.json()
        source = head.get("source")
        true = self.world.true(source) if source else self.head_true
        if true != self.head_true or not self.tally.head_trace:
            self.head_true = true
            self.tally.head_trace.append((now, self.tally.runs, true))
        if self.tally.time_to_target is None and true <= self.target and self.args.landscape == "bowls":
            self.tally.time_to_target = now

    async def _head_audited(self, client: httpx.AsyncClient) -> bool:
        head = (await self._call(client, "GET", f"/v1/tracks/{TRACK}/head")).json()
        if head.get("parent_hash") is None:
            return True  # the baseline: nothing to audit
        calibrations = [r for r in head.get("runs", []) if r["kind"] == "calibrate"]
        return len(calibrations) >= self.args.calibration_runs

    async def run(self) -> Tally:
        limits = httpx.Limits(max_connections=CONCURRENCY + 8, max_keepalive_connections=CONCURRENCY + 8)
        async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
            gate = asyncio.Semaphore(CONCURRENCY)
            actors = self._actors()

            async def register(actor: Actor) -> dict[str, Any]:
                async with gate:
                    key = SigningKey.generate()
                    worker_id, token = await self._register(client, actor, key)
                    return {"actor": actor, "key": key, "token": token, "worker_id": worker_id}

            states = await asyncio.gather(*(register(actor) for actor in actors))
            queue: list[tuple[int, int, int]] = [(0, i, i) for i in range(len(states))]
            heapq.heapify(queue)
            order = itertools.count(len(states))

            async def step(index: int, now: int) -> None:
                async with gate:
                    free_at = await self._step(client, states[index], now)
                if free_at is not None:
                    heapq.heappush(queue, (free_at, next(order), index))

            # Past the run budget, the network keeps going (up to half as long again) while the
            # head still awaits its calibration: a promotion is final only once audited.
            while queue and self.tally.runs < self.args.runs * 1.5:
                if self.tally.runs >= self.args.runs and await self._head_audited(client):
                    break
                now = queue[0][0]
                due = []
                while queue and queue[0][0] == now:
                    due.append(heapq.heappop(queue)[2])
                await asyncio.gather(*(step(index, now) for index in due))
                await self._observe_head(client, now)
                if self.tally.time_to_target is not None and self.args.stop_at_target:
                    break
            self.actors = actors
            self.outcomes = await self._outcomes(client)
            board = (await self._call(client, "GET", f"/v1/tracks/{TRACK}/leaderboard", params={"limit": 1000})).json()
            self.promotions = sorted(
                (e for e in board["entries"] if e["verified_at"] and e["hash"] in self.tally.explored),
                key=lambda e: e["verified_at"],
            )
        return self.tally

    async def _outcomes(self, client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
        outcomes: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = (await self._call(client, "GET", f"/v1/tracks/{TRACK}/log", params=params)).json()
            for entry in page["entries"]:
                outcomes[entry["hash"]] = entry
            cursor = page.get("next_cursor")
            if not cursor:
                return outcomes


# --- figures ------------------------------------------------------------------------------------


def figures(sim: Simulation) -> dict[str, Any]:
    tally, args = sim.tally, sim.args
    baseline_true = sim.world.true((REPO_ROOT / "baseline" / "train.py").read_text())
    previous = baseline_true
    false_promotions = fakes_promoted = 0
    trace = []
    for entry in sim.promotions:
        explored = tally.explored[entry["hash"]]
        trace.append({"hash": entry["hash"][:12], "parent": explored.parent[:12], "true": round(explored.true_child, 6),
                      "replaced": round(previous, 6), "by": explored.by})  # fmt: skip
        if explored.true_child >= previous - 1e-12:
            false_promotions += 1
            fakes_promoted += explored.by != "honest"
        previous = explored.true_child
    revoked = [h for h, e in sim.outcomes.items() if (e.get("reason") or "").startswith("promotion revoked")]
    revoked_fakes = [h for h in revoked if h in tally.explored and tally.explored[h].by != "honest"]
    decided = {"verified", "rejected", "unverified"}
    tested = [h for h in tally.verified_hashes if sim.outcomes.get(h, {}).get("status") in decided]
    candidates = [h for h, e in sim.outcomes.items() if e["status"] in decided | {"candidate"} and h in tally.explored]
    honest = [e for e in tally.explored.values() if e.by == "honest"]
    planted = [e for e in honest if e.true_child < e.true_parent - 0.5 * args.gain * args.sigma_seed]
    planted_promoted = [e for e in planted if sim.outcomes.get(e.hash, {}).get("status") == "verified"]
    planted_candidates = [e for e in planted if e.hash in set(candidates)]
    # A fair test of a planted gain: the candidate was verified against its own parent. Once a
    # sibling is promoted, the rest are measured against it, over which they gain nothing.
    fair = [
        e for e in planted_candidates
        if tally.verify_controls.get(e.hash) == {e.parent} and sim.outcomes.get(e.hash, {}).get("status") in decided
    ]
    fair_promoted = [e for e in fair if sim.outcomes[e.hash]["status"] == "verified"]
    # Every decided candidate by its true gain over the one head it was verified against.
    baseline_hash = variant_hash((REPO_ROOT / "baseline" / "train.py").read_text())
    real_gain, no_gain = [], []
    missed: list[str] = []  # why each candidate truly better than its one head was not promoted
    for digest in tested:
        controls = tally.verify_controls.get(digest, set())
        if len(controls) != 1 or digest not in tally.explored:
            continue
        [control] = controls
        if control == baseline_hash:
            control_true = baseline_true
        elif control in tally.explored:
            control_true = tally.explored[control].true_child
        else:
            continue
        gain = control_true - tally.explored[digest].true_child
        promoted = sim.outcomes[digest]["status"] == "verified" or (sim.outcomes[digest].get("reason") or "").startswith(
            "promotion revoked"
        )
        if gain >= 0.75 * args.gain * args.sigma_seed and args.landscape == "planted":
            real_gain.append(promoted)
            if not promoted:
                missed.append(sim.outcomes[digest].get("reason") or sim.outcomes[digest]["status"])
        elif gain <= 1e-12:
            no_gain.append(promoted)
    runs = max(1, tally.runs)
    checks = tally.trainings["verify"] + tally.trainings["calibrate"]
    caught: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        members = [a for a in sim.actors if a.kind == kind]
        if not members or kind == "honest":
            continue
        quarantined = [a.quarantined_after for a in members if a.quarantined_after is not None]
        caught[kind] = {
            "workers": len(members),
            "quarantined": len(quarantined),
            "runs_before_quarantine": statistics.median(quarantined) if quarantined else None,
        }
    honest_quarantined = [a for a in sim.actors if a.kind == "honest" and a.quarantined_after is not None]
    latencies = sorted(tally.latencies)

    def percentile(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1) if latencies else None

    return {
        "workers": args.workers,
        "landscape": args.landscape,
        "adversaries": dict(args.adversary),
        "noise": {"sigma_seed": args.sigma_seed, "shared_fraction": args.shared_fraction,
                  "sigma_machine": sim.noise.sigma_machine, "sigma_paired": round(sim.noise.sigma_paired, 6),
                  "load_rate": args.load_rate},
        "runs": tally.runs,
        "leases": tally.leases,
        "trainings": tally.trainings,
        "variants_explored": len(tally.explored),
        "candidates": len(candidates),
        "candidates_tested": len(tested),
        "promotions": len(sim.promotions),
        "false_promotions": false_promotions,
        "false_promotion_rate": false_promotions / len(tested) if tested else None,
        "fakes_promoted": fakes_promoted,
        "promotions_revoked": len(revoked),
        "fakes_revoked": len(revoked_fakes),
        "planted_honest": len(planted),
        "planted_candidates": len(planted_candidates),
        "planted_promoted": len(planted_promoted),
        "power": len(planted_promoted) / len(planted) if planted else None,
        "planted_tested_against_parent": len(fair),
        "power_against_parent": len(fair_promoted) / len(fair) if fair else None,
        "claim_pass_rate_planted": len(planted_candidates) / len(planted) if planted else None,
        "tested_with_true_gain": len(real_gain),
        "verify_power": sum(real_gain) / len(real_gain) if real_gain else None,
        "missed_gain_reasons": missed,
        "tested_without_gain": len(no_gain),
        "promoted_without_gain": sum(no_gain),
        "verification_share": checks / runs,
        "overhead_share_with_references": (checks + tally.trainings["reference"]) / runs,
        "head_true_start": baseline_true,
        "head_true_end": sim.head_true,
        "head_trace": tally.head_trace[-50:],
        "promotion_trace": trace[-50:],
        "target": sim.target if args.landscape == "bowls" else None,
        "time_to_target": tally.time_to_target,
        "adversaries_caught": caught,
        "honest_quarantined": len(honest_quarantined),
        "honest_quarantine_reasons": [a.quarantine_reason for a in honest_quarantined],
        "latency_ms": {"p50": percentile(0.5), "p95": percentile(0.95), "p99": percentile(0.99)},
        "transport_errors": tally.transport_errors,
        "refused_results": tally.refused,
    }


def table(result: dict[str, Any]) -> str:
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    skip = {"head_trace", "promotion_trace"}
    lines = [f"{key:<32} {fmt(value)}" for key, value in result.items() if key not in skip]
    return "\n".join(lines)


def _adversary(text: str) -> tuple[str, float]:
    kind, _, share = text.partition("=")
    if kind not in KINDS or kind == "honest":
        raise argparse.ArgumentTypeError(f"unknown adversary {kind!r}; choose from {', '.join(KINDS[1:])}")
    return kind, float(share)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--workers", type=int, default=64)
    add("--runs", type=int, default=5000, help="stop after this many simulated training runs")
    add("--landscape", choices=("null", "planted", "bowls"), default="planted")
    add("--gain", type=float, default=2.0, help="planted gains, in σ_seed")
    add("--plant-rate", type=float, default=0.05, help="share of one-constant changes that carry a planted gain")
    add("--sigma-seed", type=float, default=0.02, help="σ of one run's score over seeds (bpb)")
    add("--shared-fraction", type=float, default=0.21, help="share of the seed variance a shared seed cancels")
    add("--machine-sigmas", type=float, default=2.0, help="σ of the per-machine offset, in σ_seed")
    add("--load-rate", type=float, default=0.02, help="chance per run that a load episode starts")
    add("--adversary", type=_adversary, action="append", default=[], help="KIND=SHARE, e.g. liar=0.1 (repeatable)")
    add("--ring-accounts", type=int, default=5, help="accounts of the sybil ring")
    add("--machines-per-account", type=int, default=1)
    add("--quorum", type=int, default=2)
    add("--calibration-runs", type=int, default=2, help="runs of each new head: its audit")
    add("--claim-margin", type=float, default=1.0, help="claimed gain that makes a candidate, in σ")
    add("--max-verifications", type=int, default=16)
    add("--noise-sigma", type=float, default=None, help="the track's configured σ (default: the true paired σ)")
    add("--target-fraction", type=float, default=0.5, help="bowls: the target is this share of the best gain")
    add("--stop-at-target", action="store_true")
    add("--seed", type=int, default=1)
    add("--database", default="sqlite", help="sqlite, or a PostgreSQL URL (a fresh schema is made in it)")
    add("--url", action="append", default=[],
        help="drive a running coordinator with a track 'sim' instead of starting one (repeat for replicas)")
    add("--coordinator-root", type=Path, default=REPO_ROOT, help="the checkout whose coordinator runs")
    add("--serve-workers", type=int, default=1, help="`coordinator serve --workers` (more than one needs Redis)")
    add("--replicas", type=int, default=1, help="`coordinator serve` processes on one database (more than one needs Redis)")
    add("--redis", default=None, help="a Redis URL for the coordinator's shared roles")
    add("--solo", action="store_true", help="one researcher alone, keeping whatever it measured better (no network)")
    add("--fast", action="store_true", help="a small network and few runs, for the test suite")
    add("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.fast:
        args.workers, args.runs = min(args.workers, 12), min(args.runs, 300)
    return args


def solo(args: argparse.Namespace) -> dict[str, Any]:
    """One researcher alone, as autoresearch runs: no coordinator, no verification. Each step
    proposes a child of the current best with the same offline agent, trains it paired with its
    parent (one seed, one machine), and keeps it when it measured better. Time is runs, as above."""
    baseline = (REPO_ROOT / "baseline" / "train.py").read_text()
    world = Landscape(kind=args.landscape, baseline=constants(baseline), sigma_seed=args.sigma_seed, gain=args.gain,
                      plant_rate=args.plant_rate, seed=args.seed)  # fmt: skip
    noise = Noise(sigma_seed=args.sigma_seed, shared_fraction=args.shared_fraction,
                  sigma_machine=args.machine_sigmas * args.sigma_seed, load_rate=args.load_rate)  # fmt: skip
    rng = random.Random(args.seed)
    machine = Machine(offset=rng.gauss(0.0, noise.sigma_machine), rng=random.Random(rng.random()))
    agent = OfflineAgent(strategy="random")
    target = world.true(baseline) + args.target_fraction * (world.best() - world.true(baseline))
    head, runs, time_to_target, kept = baseline, 0, None, 0
    while runs < args.runs:
        seed = rng.getrandbits(31)
        child = agent.propose(ProposalContext(track_id=TRACK, brief="", parent_hash="", parent_source=head, seed=seed)).source
        parent_score = machine.measure(world.true(head), seed, noise)
        child_score = machine.measure(world.true(child), seed, noise)
        runs += 2
        if child_score < parent_score:
            head, kept = child, kept + 1
        if time_to_target is None and world.true(head) <= target:
            time_to_target = runs
            if args.stop_at_target:
                break
    return {"workers": 1, "solo": True, "landscape": args.landscape, "runs": runs, "kept": kept,
            "head_true_start": world.true(baseline), "head_true_end": world.true(head), "target": target,
            "time_to_target": time_to_target}  # fmt: skip


async def _simulate(args: argparse.Namespace) -> dict[str, Any]:
    noise = Noise(sigma_seed=args.sigma_seed, shared_fraction=args.shared_fraction, sigma_machine=0.0)
    policy = TrackPolicy(
        quorum=args.quorum, calibration_runs=args.calibration_runs, noise_sigma=args.noise_sigma if args.noise_sigma is not None else noise.sigma_paired,
        claim_margin=args.claim_margin, max_verifications=args.max_verifications,
    )
    if args.url:
        sim = Simulation(args, [url.rstrip("/") for url in args.url])
        await sim.run()
        return figures(sim)
    with (
        tempfile.TemporaryDirectory(prefix="arn-sim-") as workdir,
        serve(database=args.database, workdir=Path(workdir), policy=policy, root=args.coordinator_root,
              serve_workers=args.serve_workers, replicas=args.replicas, redis_url=args.redis) as served,
    ):  # fmt: skip
        sim = Simulation(args, served.urls)
        started = time.monotonic()
        await sim.run()
        result = figures(sim)
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        return result


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    result = solo(args) if args.solo else asyncio.run(_simulate(args))
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
