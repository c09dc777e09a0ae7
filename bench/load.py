"""The network simulator's load mode: how many volunteers one machine's coordinator holds.

Simulated workers (asyncio; real Ed25519 keys, signed runs, the real offline agent's train.py
changes, the simulator's landscape for scores: bench/simnet) drive a real `coordinator serve` (or
several replicas, or a URL) through the real HTTP API, in real time:

- **cadence** (the default): each worker takes a lease, "trains" for `--cycle-s` (300 s) while it
  heartbeats every `--heartbeat-s` (the lease's own interval by default), reads the research log
  and the leaderboard before it proposes a change (as the agent does), and reports its result;
  workers join over `--spread-s`, their first leases cut short at random so that their cycles are
  spread evenly from the start. Besides them, people view the track page at `--page-views`
  per second.
- **back-to-back** (`--back-to-back`): no training, one heartbeat per lease: the coordinator's
  ceiling in lease cycles per second.

It reports, over the measured window (after `--warmup-s`): completed lease cycles per second,
requests per second and p50/p99 latency by endpoint, errors (5xx, timeouts, dropped connections)
and requests shed (503 or 429, with Retry-After), and PostgreSQL's row writes per heartbeat and
per cycle (from pg_stat_user_tables). `--ramp 1000,2000,4000` runs each population in turn and
names the largest held with p99 < 200 ms on every endpoint and no errors.

    python bench/load.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --redis redis://127.0.0.1:6379/15 --replicas 2 --ramp 500,1000,2000 --duration 90
    python bench/load.py --back-to-back --workers 200 --duration 60 --database postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from bench.simnet.actors import Actor, registration, signed_run  # noqa: E402
from bench.simnet.coordinator import HARDWARE_CLASS, TRACK, TrackPolicy, serve  # noqa: E402
from bench.simnet.landscape import Landscape, Machine, Noise, constants  # noqa: E402
from shared.signing import SigningKey  # noqa: E402
from worker.agents.offline import OfflineAgent  # noqa: E402

P99_GOAL_S = 0.2
CONNECTIONS_PER_CLIENT = 16


@dataclass
class Stats:
    started: float = 0.0  # the measured window's start (monotonic)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cycles: int = 0
    leases: int = 0
    heartbeats: int = 0

    def measuring(self) -> bool:
        return self.started > 0 and time.monotonic() >= self.started


class Load:
    def __init__(self, args: argparse.Namespace, urls: list[str]) -> None:
        self.args, self.urls = args, urls
        self.rng = random.Random(args.seed)
        baseline = (REPO_ROOT / "baseline" / "train.py").read_text()
        self.world = Landscape(kind="planted", baseline=constants(baseline), sigma_seed=0.02, gain=2.0,
                               plant_rate=0.05, seed=args.seed)  # fmt: skip
        self.noise = Noise(sigma_seed=0.02, shared_fraction=0.21, sigma_machine=0.04, load_rate=0.0)
        self.agent = OfflineAgent(strategy="random")
        self.stats = Stats()
        self.stopping = False

    async def request(self, client: httpx.AsyncClient, endpoint: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One request to a replica drawn at random; None when it failed (timed, and counted)."""
        began = time.monotonic()
        counted = self.stats.measuring()
        try:
            response = await client.request(method, f"{self.rng.choice(self.urls)}{path}", **kwargs)
        except httpx.TimeoutException:
            if counted:
                self.stats.errors[f"{endpoint}: timeout"] += 1
            return None
        except httpx.TransportError as exc:
            if counted:
                self.stats.errors[f"{endpoint}: {type(exc).__name__}"] += 1
            return None
        if counted:
            self.stats.latencies[endpoint].append(time.monotonic() - began)
            self.stats.statuses[endpoint][response.status_code] += 1
        return response

    async def _pause(self, response: httpx.Response | None, default_s: float) -> None:
        retry = response.headers.get("Retry-After") if response is not None else None
        await asyncio.sleep(float(retry) if retry else default_s)

    async def register(self, client: httpx.AsyncClient, index: int) -> dict[str, Any]:
        key = SigningKey.generate()
        body = registration(key, name=f"load-{index}", account=f"volunteer-{index}", hardware_class=HARDWARE_CLASS)
        for _ in range(30):
            response = await self.request(client, "register", "POST", "/v1/workers", json=body)
            if response is not None and response.status_code == 201:
                answer = response.json()
                machine = Machine(offset=self.rng.gauss(0.0, self.noise.sigma_machine), rng=random.Random(index))
                actor = Actor(index, "honest", f"volunteer-{index}", machine, random.Random(index))
                return {"key": key, "token": answer["token"], "worker_id": answer["worker_id"], "actor": actor}
            await self._pause(response, 1.0)
        raise RuntimeError("could not register a worker")

    async def worker(self, client: httpx.AsyncClient, state: dict[str, Any]) -> None:
        args = self.args
        headers = {"Authorization": f"Bearer {state['token']}"}
        first = True
        if not args.back_to_back:
            await asyncio.sleep(self.rng.uniform(0, args.spread_s))
        while not self.stopping:
            response = await self.request(client, "lease", "POST", "/v1/leases", json={"track_id": TRACK}, headers=headers)
            if response is None or response.status_code != 200:
                await self._pause(response, 5.0)
                continue
            lease = response.json()["lease"]
            if lease is None:
                await self._pause(response, args.no_work_s)
                continue
            if self.stats.measuring():
                self.stats.leases += 1
            interval = args.heartbeat_s or float(lease.get("heartbeat_interval_s") or 10.0)
            if lease["kind"] == "explore" and not args.back_to_back:
                # The agent reads what the network has tried before it proposes.
                await self.request(client, "log", "GET", f"/v1/tracks/{TRACK}/log", params={"limit": 50})
                await self.request(client, "leaderboard", "GET", f"/v1/tracks/{TRACK}/leaderboard")
            report = state["actor"].answer(lease, self.world, self.noise, self.agent)
            # The first lease is cut short at random, so that the population's cycles are spread
            # over the whole cycle from the start (a network in its steady state).
            training_s = 0.0 if args.back_to_back else args.cycle_s * (self.rng.uniform(0.0, 1.0) if first else self.rng.uniform(0.9, 1.1))
            first = False
            ends = time.monotonic() + training_s
            while True:
                beat = await self.request(client, "heartbeat", "POST", f"/v1/leases/{lease['id']}/heartbeat",
                                          json={"phase": "training"}, headers=headers)  # fmt: skip
                if beat is not None and beat.status_code == 200 and self.stats.measuring():
                    self.stats.heartbeats += 1
                left = ends - time.monotonic()
                if left <= 0 or self.stopping:
                    break
                await asyncio.sleep(min(interval, left))
            if self.stopping:
                return
            await self.report(client, state, lease, report, headers)

    async def report(self, client: httpx.AsyncClient, state: dict[str, Any], lease: dict[str, Any], report: Any,
                     headers: dict[str, str]) -> None:  # fmt: skip
        body = signed_run(state["key"], state["worker_id"], lease, report)
        for _ in range(10):  # a result is idempotent: resent until taken, as the worker's outbox does
            response = await self.request(client, "result", "POST", f"/v1/leases/{lease['id']}/result", json=body, headers=headers)
            if response is not None and response.status_code == 200:
                if self.stats.measuring():
                    self.stats.cycles += 1
                return
            if response is not None and response.status_code not in (429, 503):
                return  # refused (an expired lease, say): counted under its status
            await self._pause(response, 2.0)

    async def viewer(self, client: httpx.AsyncClient) -> None:
        """People looking at the track page: the page, then its live fragment."""
        while not self.stopping:
            await asyncio.sleep(self.rng.expovariate(self.args.page_views))
            await self.request(client, "page", "GET", f"/tracks/{TRACK}")

    async def run(self, workers: int) -> Stats:
        args = self.args
        # Several small clients, not one pool of every connection: httpx looks over its whole pool
        # for each request it places, so one pool of hundreds of connections costs the load client
        # (on the coordinator's cores) more than the coordinator spends on the request.
        shards = max(1, math.ceil(args.connections / CONNECTIONS_PER_CLIENT))
        size = math.ceil(args.connections / shards)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(httpx.AsyncClient(timeout=args.timeout_s, limits=limits))
                for _ in range(shards)
            ]
            gate = asyncio.Semaphore(32)

            async def register(index: int) -> dict[str, Any]:
                async with gate:
                    return await self.register(clients[index % shards], index)

            states = await asyncio.gather(*(register(i) for i in range(workers)))
            print(f"  {workers} workers registered", file=sys.stderr)
            tasks = [asyncio.create_task(self.worker(clients[i % shards], state)) for i, state in enumerate(states)]
            if args.page_views > 0 and not args.back_to_back:
                tasks.append(asyncio.create_task(self.viewer(clients[0])))
            self.stats.started = time.monotonic() + args.warmup_s
            await asyncio.sleep(args.warmup_s)
            writes_before = _row_writes(args.database_url)
            await asyncio.sleep(args.duration)
            self.stopping = True
            measured_s = time.monotonic() - self.stats.started
            self.stats.started = float("inf")  # stop counting
            writes_after = _row_writes(args.database_url)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.measured_s = measured_s
        self.writes = {table: writes_after.get(table, 0) - count for table, count in writes_before.items()}
        return self.stats


def _row_writes(database_url: str | None) -> dict[str, int]:
    """Rows inserted, updated and deleted so far, by table (PostgreSQL's own statistics)."""
    if not database_url or not database_url.startswith("postgresql"):
        return {}
    import sqlalchemy

    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            time.sleep(1.0)  # statistics are flushed at most once a second
            rows = connection.execute(sqlalchemy.text(
                "select relname, n_tup_ins + n_tup_upd + n_tup_del from pg_stat_user_tables"
                " where schemaname = current_schema()"
            ))  # fmt: skip
            return {name: int(count) for name, count in rows}
    finally:
        engine.dispose()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(load: Load, workers: int) -> dict[str, Any]:
    stats, seconds = load.stats, load.measured_s
    endpoints = {}
    for endpoint, values in sorted(stats.latencies.items()):
        endpoints[endpoint] = {
            "per_s": round(len(values) / seconds, 1),
            "p50_ms": round(statistics.median(values) * 1000, 1),
            "p99_ms": round(_percentile(values, 0.99) * 1000, 1),
            "statuses": dict(stats.statuses[endpoint]),
        }
    shed = sum(n for e in stats.statuses.values() for status, n in e.items() if status in (429, 503))
    server_errors = sum(n for e in stats.statuses.values() for status, n in e.items() if status >= 500 and status != 503)
    errors = sum(stats.errors.values()) + server_errors
    p99_worst = max((e["p99_ms"] for e in endpoints.values()), default=0.0)
    writes = sum(load.writes.values())
    return {
        "workers": workers,
        "mode": "back-to-back" if load.args.back_to_back else f"cadence {load.args.cycle_s:.0f} s",
        "replicas": len(load.urls),
        "seconds": round(seconds, 1),
        "cycles_per_s": round(stats.cycles / seconds, 2),
        "requests_per_s": round(sum(len(v) for v in stats.latencies.values()) / seconds, 1),
        "p99_worst_ms": p99_worst,
        "errors": errors,
        "error_kinds": dict(stats.errors),
        "shed": shed,
        "held": errors == 0 and shed == 0 and p99_worst < P99_GOAL_S * 1000,
        "endpoints": endpoints,
        # A lease row is written when granted and when completed; what else the leases table took
        # in the window is the heartbeats' deadline moves.
        "db_row_writes_per_heartbeat": (
            round(max(0, load.writes.get("leases", 0) - stats.leases - stats.cycles) / stats.heartbeats, 3)
            if stats.heartbeats and load.writes else None
        ),
        "db_row_writes_per_cycle": round(writes / stats.cycles, 1) if stats.cycles and load.writes else None,
        "db_row_writes_by_table": {k: v for k, v in load.writes.items() if v},
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['workers']} workers, {result['mode']}, {result['replicas']} replica(s), {result['seconds']} s measured:"
        f" {result['cycles_per_s']} cycles/s, {result['requests_per_s']} requests/s, worst p99 {result['p99_worst_ms']} ms,"
        f" errors {result['errors']} {result['error_kinds'] or ''}, shed {result['shed']}"
        f" -> {'held' if result['held'] else 'NOT held'}",
        f"  PostgreSQL row writes: {result['db_row_writes_per_cycle']} per cycle, {result['db_row_writes_per_heartbeat']}"
        f" per heartbeat; by table {result['db_row_writes_by_table']}",
        f"  {'endpoint':<12} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses",
    ]
    for endpoint, e in result["endpoints"].items():
        lines.append(f"  {endpoint:<12} {e['per_s']:>7} {e['p50_ms']:>8} {e['p99_ms']:>8}  {e['statuses']}")
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--workers", type=int, default=500)
    add("--ramp", default=None, help="populations to run in turn, e.g. 500,1000,2000 (a fresh coordinator each)")
    add("--back-to-back", action="store_true", help="no training: lease, one heartbeat, result, again")
    add("--cycle-s", type=float, default=300.0, help="a lease's training time")
    add("--heartbeat-s", type=float, default=None, help="heartbeat interval (default: the lease's)")
    add("--page-views", type=float, default=None, help="track page views per second (default: one per 2,000 workers)")
    add("--no-work-s", type=float, default=5.0, help="wait after 'no work' when the coordinator gives no Retry-After")
    add("--duration", type=float, default=60.0, help="the measured window, in seconds")
    add("--spread-s", type=float, default=60.0, help="cadence: the workers join over this long")
    add("--warmup-s", type=float, default=None, help="before the measured window (default: the spread and 20 s more)")
    add("--timeout-s", type=float, default=30.0, help="the client's timeout per request")
    add("--connections", type=int, default=256)
    add("--database", default="sqlite", help="sqlite, or a PostgreSQL URL (a fresh schema is made in it)")
    add("--redis", default=None, help="a Redis URL for the coordinator's shared roles")
    add("--replicas", type=int, default=1, help="`coordinator serve` processes (more than one needs PostgreSQL and Redis)")
    add("--serve-workers", type=int, default=1, help="`coordinator serve --workers`")
    add("--coordinator-root", type=Path, default=REPO_ROOT, help="the checkout whose coordinator runs (compare two)")
    add("--url", action="append", default=[], help="drive running coordinators with a track 'sim' instead")
    add("--seed", type=int, default=1)
    add("--json", action="store_true")
    args = parser.parse_args(argv)
    args.database_url = None
    if args.warmup_s is None:
        args.warmup_s = 10.0 if args.back_to_back else args.spread_s + 20.0
    return args


async def _one(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    if args.page_views is None:
        args.page_views = workers / 2000
    if args.url:
        load = Load(args, args.url)
        await load.run(workers)
        return figures(load, workers)
    with tempfile.TemporaryDirectory(prefix="arn-load-") as workdir, serve(
        # The track's budget is the cycle: the lease's heartbeat interval follows from it.
        database=args.database, workdir=Path(workdir),
        policy=TrackPolicy(time_budget_s=60.0 if args.back_to_back else args.cycle_s), replicas=args.replicas,
        redis_url=args.redis, serve_workers=args.serve_workers, root=args.coordinator_root,
    ) as served:  # fmt: skip
        args.database_url = served.database_url
        load = Load(args, served.urls)
        await load.run(workers)
        return figures(load, workers)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    populations = [int(n) for n in args.ramp.split(",")] if args.ramp else [args.workers]
    results = []
    for workers in populations:
        page_views = args.page_views
        result = asyncio.run(_one(args, workers))
        args.page_views = page_views
        results.append(result)
        print(json.dumps(result) if args.json else table(result), flush=True)
    if len(results) > 1:
        held = [r["workers"] for r in results if r["held"]]
        print(f"largest population held (p99 < {P99_GOAL_S * 1000:.0f} ms, no errors, nothing shed): {max(held) if held else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
