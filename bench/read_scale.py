"""How long the read endpoints take with a million runs in PostgreSQL.

A real `coordinator serve` on a fresh schema with the simulation's track (bench/simnet); then
PostgreSQL itself fills it (generate_series) with accounts, workers, variants, a line of promoted
heads, leases and one run per lease, and the read endpoints are timed over HTTP, each many times.
Which index serves each statement is checked by tests/api/test_query_plans.py.

    python bench/read_scale.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/read_scale.py --runs 100000 --repeat 20      # a quicker look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from bench.simnet.coordinator import TRACK, TrackPolicy, serve  # noqa: E402

FILL = """
insert into accounts (name) select 'account-' || a from generate_series(1, :accounts) a;
insert into workers (id, account_id, name, public_key, token_hash, hardware_class, hardware, valid_streak,
                     invalid_results, quarantined, last_seen_at)
select 'w' || lpad(w::text, 31, '0'), (select id from accounts where name = 'account-' || (1 + w % :accounts)),
       'machine-' || w, 'key-' || w, md5('token-' || w), 'sim', '{}', w % 7, 0, false, now()
from generate_series(1, :workers) w;

-- Explored variants: children of the baseline, most discarded.
insert into variants (track_id, hash, parent_id, author_worker_id, hypothesis, source, status, claimed_val_bpb,
                      claimed_gain, parent_val_bpb, origin, created_at)
select :track, md5('variant-' || v) || md5('v' || v), :baseline, 'w' || lpad((1 + v % :workers)::text, 31, '0'),
       'idea ' || v, 'print(' || v || ')',
       case when v % 50 = 0 then 'rejected' else 'discarded' end, 1.0 + (v % 100) / 1000.0, -0.01, 1.0, 'agent',
       now() - make_interval(secs => (:variants - v))
from generate_series(1, :variants) v;

-- A line of promoted heads.
insert into variants (track_id, hash, parent_id, author_worker_id, hypothesis, source, status, val_bpb,
                      promoted_val_bpb, claimed_val_bpb, claimed_gain, verified_gain, parent_val_bpb, origin,
                      verified_by, created_at, verified_at)
select :track, md5('head-' || h) || md5('h' || h), :baseline, 'w' || lpad((1 + h % :workers)::text, 31, '0'),
       'head ' || h, 'print(' || h || ')', 'verified', 1.0 - h / 10000.0, 1.0 - h / 10000.0, 1.0 - h / 10000.0,
       0.001, 0.001, 1.0, 'agent', '[]', now() - make_interval(secs => (:heads - h) * 60),
       now() - make_interval(secs => (:heads - h) * 60)
from generate_series(1, :heads) h;
update variants set parent_id = id - 1, previous_head_id = id - 1
where track_id = :track and hypothesis like 'head %' and hypothesis <> 'head 1';
update variants set previous_head_id = :baseline where track_id = :track and hypothesis = 'head 1';
update tracks set head_variant_id = (select max(id) from variants where status = 'verified') where id = :track;

-- One run per lease, spread over the variants and the workers.
insert into leases (id, track_id, kind, variant_id, worker_id, seed, state, deadline, created_at, finished_at)
select 'l' || lpad(r::text, 31, '0'), :track, case when r % 10 = 0 then 'verify' else 'explore' end,
       (select min(id) from variants) + r % :variants, 'w' || lpad((1 + r % :workers)::text, 31, '0'), r,
       'completed', now(), now() - make_interval(secs => (:runs - r)), now()
from generate_series(1, :runs) r;
insert into runs (lease_id, worker_id, variant_id, kind, seed, status, val_bpb, control_val_bpb, steps,
                  train_seconds, metrics, env, payload_sha256, signature, created_at)
select id, worker_id, variant_id, kind, seed, 'ok', 1.0, 1.01, 100, 60.0, '{"val_bpb": 1.0}', '{}',
       md5(id), 'sig', created_at
from leases where id like 'l%';
analyze;
"""

READS = [
    "/v1/info",
    "/v1/tracks",
    f"/v1/tracks/{TRACK}",
    f"/v1/tracks/{TRACK}/head",
    f"/v1/tracks/{TRACK}/leaderboard",
    f"/v1/tracks/{TRACK}/log",
    f"/v1/tracks/{TRACK}/log?status=verified",
    f"/v1/tracks/{TRACK}/lineage",
    "/",
    f"/tracks/{TRACK}",
    "/accounts/account-1",
]


def _fill(database_url: str, *, runs: int, variants: int, workers: int, accounts: int, heads: int) -> float:
    started = time.monotonic()
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as connection:
            baseline = connection.execute(
                sqlalchemy.text("select baseline_variant_id from tracks where id = :track"), {"track": TRACK}
            ).scalar_one()
            params = {"track": TRACK, "baseline": baseline, "runs": runs, "variants": variants, "workers": workers,
                      "accounts": accounts, "heads": heads}  # fmt: skip
            for statement in FILL.split(";"):
                if statement.strip():
                    connection.execute(sqlalchemy.text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
    finally:
        engine.dispose()
    return time.monotonic() - started


def _time(client: httpx.Client, url: str, path: str, repeat: int) -> tuple[float, float, int, str]:
    """p50 and p99 seconds, the answer's size, and its status (the first that was not 200)."""
    client.get(f"{url}{path}")  # warm
    seconds, status = [], "200"
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(f"{url}{path}")
        seconds.append(time.perf_counter() - began)
        if response.status_code != 200 and status == "200":
            status = f"{response.status_code} {response.text[:80]}"
    seconds.sort()
    return statistics.median(seconds), seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))], len(response.content), status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--heads", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="arn-reads-") as workdir, serve(
        database=args.database, workdir=Path(workdir), policy=TrackPolicy()
    ) as served:
        filled = _fill(served.database_url, runs=args.runs, variants=args.variants, workers=args.workers,
                       accounts=args.accounts, heads=args.heads)  # fmt: skip
        print(f"{args.runs:,} runs and leases, {args.variants:,} variants, {args.heads} heads, {args.workers:,} "
              f"workers: filled in {filled:.0f} s")  # fmt: skip
        print(f"{'endpoint':<40} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>9}  status")
        with httpx.Client(timeout=120) as client:
            for path in READS:
                p50, p99, size, status = _time(client, served.url, path, args.repeat)
                print(f"{path:<40} {p50 * 1000:8.1f} {p99 * 1000:8.1f} {size:9,}  {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
