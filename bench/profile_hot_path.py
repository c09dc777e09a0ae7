"""Where a lease cycle's time goes inside the coordinator: a profile of the hot path.

The real app (in this process, through Starlette's test client, so the profile holds the app and
not an HTTP server; its sync endpoints run inline on the event loop's thread, where the profiler
is) on a fresh PostgreSQL schema (or SQLite) with the simulation's track;
simulated workers run lease -> heartbeat -> result cycles with signed results. Prints the SQL
statements each endpoint sends, the time per endpoint, and cProfile's top functions.

    python bench/profile_hot_path.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test --cycles 500
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

import anyio.to_thread  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.simnet.actors import Actor, registration, signed_run  # noqa: E402
from bench.simnet.coordinator import HARDWARE_CLASS, TRACK, TrackPolicy, _database, _prepare  # noqa: E402
from bench.simnet.landscape import Landscape, Machine, Noise, constants  # noqa: E402
from coordinator.config import Settings  # noqa: E402
from coordinator.main import create_app  # noqa: E402
from shared.signing import SigningKey  # noqa: E402
from worker.agents.offline import OfflineAgent  # noqa: E402


async def _inline(func: Any, *args: Any, **_kwargs: Any) -> Any:
    """anyio.to_thread.run_sync, run on the calling (event loop) thread."""
    return func(*args)


class StatementCounter:
    """Counts the statements sent, and each one's shape (its first 90 characters) per endpoint."""

    def __init__(self) -> None:
        self.count = 0
        self.endpoint = ""
        self.shapes: dict[tuple[str, str], int] = defaultdict(int)

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += 1
        self.shapes[(self.endpoint, " ".join(statement.split())[:90])] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--statements", action="store_true", help="list each endpoint's statements by shape")
    args = parser.parse_args(argv)

    baseline = (REPO_ROOT / "baseline" / "train.py").read_text()
    world = Landscape(kind="planted", baseline=constants(baseline), sigma_seed=0.02, gain=2.0, plant_rate=0.05, seed=1)
    noise = Noise(sigma_seed=0.02, shared_fraction=0.21, sigma_machine=0.04, load_rate=0.0)
    agent = OfflineAgent(strategy="random")
    rng = random.Random(1)
    counter = StatementCounter()
    event.listen(Engine, "before_cursor_execute", counter)

    with tempfile.TemporaryDirectory(prefix="arn-profile-") as workdir:
        data_dir = Path(workdir) / "coordinator"
        with _database(args.database, data_dir) as database_url:
            _prepare(database_url, data_dir, TrackPolicy(), root=REPO_ROOT)
            settings = Settings(data_dir=data_dir, database_url=database_url, create_builtin_tracks=False,
                                writes_per_minute_per_worker=10**9, writes_per_minute_per_ip=10**9,
                                new_accounts_per_hour_per_ip=10**9)  # fmt: skip
            anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
            with TestClient(create_app(settings, run_reaper=False)) as client:
                workers = []
                for index in range(args.workers):
                    key = SigningKey.generate()
                    registered = registration(key, name=f"p-{index}", account=f"volunteer-{index}", hardware_class=HARDWARE_CLASS)
                    body = client.post("/v1/workers", json=registered).json()
                    actor = Actor(index, "honest", f"volunteer-{index}", Machine(rng.gauss(0, 0.04), random.Random(index)),
                                  random.Random(index))  # fmt: skip
                    workers.append((key, body["worker_id"], {"Authorization": f"Bearer {body['token']}"}, actor))

                seconds: dict[str, float] = defaultdict(float)
                statements: dict[str, int] = defaultdict(int)
                calls: dict[str, int] = defaultdict(int)

                def timed(endpoint: str, method: str, path: str, **kwargs: Any) -> Any:
                    counter.endpoint = endpoint
                    before, began = counter.count, time.perf_counter()
                    response = client.request(method, path, **kwargs)
                    seconds[endpoint] += time.perf_counter() - began
                    statements[endpoint] += counter.count - before
                    calls[endpoint] += 1
                    return response

                profile = cProfile.Profile()
                assert client.portal is not None
                client.portal.call(profile.enable)  # on the event loop's thread, which runs the app
                done = 0
                while done < args.cycles:
                    key, worker_id, headers, actor = workers[done % len(workers)]
                    lease = timed("lease", "POST", "/v1/leases", json={"track_id": TRACK}, headers=headers).json()["lease"]
                    if lease is None:
                        done += 1
                        continue
                    report = actor.answer(lease, world, noise, agent)
                    body = signed_run(key, worker_id, lease, report)
                    timed("heartbeat", "POST", f"/v1/leases/{lease['id']}/heartbeat", json={"phase": "training"}, headers=headers)
                    timed("result", "POST", f"/v1/leases/{lease['id']}/result", json=body, headers=headers)
                    done += 1
                client.portal.call(profile.disable)

    print(f"{args.cycles} cycles, {args.workers} workers, {args.database.split('://')[0]}")
    print(f"{'endpoint':<10} {'calls':>6} {'ms/call':>8} {'SQL/call':>9}")
    for endpoint in calls:
        print(f"{endpoint:<10} {calls[endpoint]:>6} {seconds[endpoint] / calls[endpoint] * 1000:8.2f} "
              f"{statements[endpoint] / calls[endpoint]:9.1f}")  # fmt: skip
    if args.statements:
        for (endpoint, shape), count in sorted(counter.shapes.items(), key=lambda item: (item[0][0], -item[1])):
            if endpoint:
                print(f"{endpoint:<10} {count / calls[endpoint]:5.2f}  {shape}")
    stats = pstats.Stats(profile)
    app_s = sum(seconds.values())
    called, spent = cumulative(stats, "check_source")
    print(f"the policy check (check_source): {called} calls, {spent:.1f} s of the {app_s:.1f} s the requests took, under the profiler")
    print()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


def cumulative(stats: pstats.Stats, function: str) -> tuple[int, float]:
    """Calls and cumulative seconds of the outermost functions so named (recursion counted once)."""
    entries = {key: value for key, value in stats.stats.items() if key[2] == function}  # type: ignore[attr-defined]
    outermost = [value for value in entries.values() if not any(caller in entries for caller in value[4])]
    return sum(value[1] for value in outermost), sum(value[3] for value in outermost)


if __name__ == "__main__":
    sys.exit(main())
