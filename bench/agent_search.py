"""Does the guided offline agent find verified improvements in fewer runs than the random one?

For every seed and strategy it starts a fresh real network on this machine: `coordinator serve`
(embedded SQLite, a temporary data dir, the cpu-tiny track at a short budget, quorum 1) and two
`worker join --agent offline --offline-strategy S` processes of two accounts, which calibrate,
explore and verify each other until each has reported `--experiments` runs. Then it reads the
coordinator's research log and leaderboard and reports, per network:

- explore: experiments proposed and trained (each is one explore run); verify: verify runs;
- verified: experiments that became verified improvements (promoted to head);
- to first: explore runs up to and including the first one that was verified;
- best Δ: the best verified val_bpb minus the baseline's calibrated val_bpb (negative is better);
- Δ@N: the same, counting only the first N explore runs, where N is the fewest explore runs any
  network made; every network is judged after the same number of runs;
- dead: experiments that changed a constant of the other hardware (GPU_* on this CPU track),
  which cannot change the model and so are runs of pure seed noise.

    python bench/agent_search.py                        # 2 seeds x 2 strategies, about 12 minutes
    python bench/agent_search.py --seeds 1 2 3 4 5 6 --experiments 24 --json > agent_search.json
    python bench/agent_search.py --pool batch1.json batch2.json   # tables and tests over both

Below the tables it tests each strategy against the first (random), one-sided: a Fisher exact
test on verified improvements per explore run, and a sign test on Δ@N paired by seed.

Both strategies get the same worker seeds (`--seed N` for one account, `N + 1000` for the other),
and for each seed they run back to back, in alternating order, so load from other processes on a
shared machine falls on both alike. Runs are not bit-reproducible: the coordinator draws each
lease's seed (data order, initialisation) at random, and under a fixed time budget the number of
steps depends on the machine's load. Read the figures as one noisy sample; more seeds narrow it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from worker.agents.guided import applies_to_hardware, parse_change  # noqa: E402

BIN = Path(sys.executable).parent
TRACK = "cpu-tiny"
ACCOUNTS = ("alice", "bob")
SECOND_ACCOUNT_SEED_OFFSET = 1000


@dataclass
class Outcome:
    """What one network (one strategy, one seed) achieved."""

    strategy: str
    seed: int
    explore: int
    verify: int
    verified: int
    candidates_left: int  # claimed improvements still awaiting verification when the workers stopped
    runs_to_first: int | None
    baseline_val_bpb: float | None
    best_val_bpb: float | None
    dead: int
    wall_s: float
    # Per explore run, oldest first: its verified val_bpb minus the baseline's, or None if not verified.
    verified_deltas: list[float | None] = field(default_factory=list)

    @property
    def best_delta(self) -> float | None:
        if self.best_val_bpb is None or self.baseline_val_bpb is None:
            return None
        return self.best_val_bpb - self.baseline_val_bpb

    def best_delta_after(self, runs: int) -> float:
        """The best verified Δ among the first `runs` explore runs; 0 where none of them was verified."""
        return min((d for d in self.verified_deltas[:runs] if d is not None), default=0.0)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class Network:
    """One coordinator and its workers as subprocesses, logging into `root`; `close` stops them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.processes.append((name, process))
        return process

    def start_coordinator(self, settings: dict[str, str]) -> None:
        env = {**os.environ, "ARN_DATA_DIR": str(self.root / "coordinator"), **settings}
        process = self.spawn(
            "coordinator", [str(BIN / "coordinator"), "serve", "--port", str(self.port)], env
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the coordinator exited:\n{self.log_tail('coordinator')}")
            try:
                _get(f"{self.url}/v1/info")
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise RuntimeError("the coordinator did not answer within 180s")

    def start_worker(self, account: str, *, strategy: str, seed: int, experiments: int) -> None:
        argv = [
            str(BIN / "worker"), "join", self.url, "--agent", "offline", "--offline-strategy", strategy,
            "--account", account, "--name", f"{account}-cpu", "--home", str(self.root / f"worker-{account}"),
            "--seed", str(seed), "--max-experiments", str(experiments), "--device", "cpu", "--threads", "1",
            "--quiet",
        ]  # fmt: skip
        self.spawn(f"worker-{account}", argv, dict(os.environ))

    def wait_for_workers(self, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        workers = [(name, p) for name, p in self.processes if name.startswith("worker-")]
        for name, process in workers:
            try:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{name} did not finish within {timeout_s:.0f}s") from None
            if process.returncode != 0:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def close(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def read_outcome(url: str, *, strategy: str, seed: int, wall_s: float) -> Outcome:
    """Judge a finished network from its public API, as anyone browsing it could."""
    log = _get(f"{url}/v1/tracks/{TRACK}/log?limit=500")["entries"]
    board = _get(f"{url}/v1/tracks/{TRACK}/leaderboard")
    oldest_first = list(reversed(log))  # the log is newest first
    statuses = [entry["status"] for entry in oldest_first]
    first = next((i + 1 for i, status in enumerate(statuses) if status == "verified"), None)
    verify = 0
    for entry in oldest_first:
        if entry["status"] in {"verified", "rejected", "candidate"}:
            detail = _get(f"{url}/v1/variants/{entry['hash']}?track_id={TRACK}")
            verify += sum(1 for run in detail["runs"] if run["kind"] == "verify")
    improved = [e["val_bpb"] for e in board["entries"] if e["hash"] != board["baseline_hash"]]
    changes = [parse_change(entry) for entry in oldest_first]
    baseline = board["baseline_val_bpb"]
    verified_deltas = [
        entry["val_bpb"] - baseline
        if entry["status"] == "verified" and entry["val_bpb"] is not None and baseline is not None
        else None
        for entry in oldest_first
    ]
    return Outcome(
        strategy=strategy,
        seed=seed,
        explore=len(oldest_first),
        verify=verify,
        verified=statuses.count("verified"),
        candidates_left=statuses.count("candidate"),
        runs_to_first=first,
        baseline_val_bpb=board["baseline_val_bpb"],
        best_val_bpb=min(improved) if improved else None,
        dead=sum(1 for c in changes if c is not None and not applies_to_hardware(c.name, "cpu")),
        wall_s=wall_s,
        verified_deltas=verified_deltas,
    )


def run_network(args: argparse.Namespace, *, strategy: str, seed: int) -> Outcome:
    root = Path(tempfile.mkdtemp(prefix=f"agent-search-{strategy}-{seed}-"))
    network = Network(root)
    started = time.monotonic()
    try:
        network.start_coordinator(
            {
                "ARN_CPU_TINY_BUDGET_S": f"{args.budget:g}",
                "ARN_CPU_TINY_QUORUM": "1",
                "ARN_CPU_TINY_CALIBRATION_RUNS": str(args.calibration_runs),
                "ARN_CPU_TINY_TOLERANCE": f"{args.tolerance:g}",
                "ARN_HEARTBEAT_INTERVAL_S": "1",
                "ARN_NO_WORK_RETRY_AFTER_S": "1",
            }
        )
        for offset, account in enumerate(ACCOUNTS):
            network.start_worker(
                account,
                strategy=strategy,
                seed=seed + offset * SECOND_ACCOUNT_SEED_OFFSET,
                experiments=args.experiments,
            )
        # A run costs the budget plus start-up and evaluation; be generous on a loaded machine.
        network.wait_for_workers(timeout_s=120 + args.experiments * (args.budget + 60))
        return read_outcome(network.url, strategy=strategy, seed=seed, wall_s=time.monotonic() - started)
    except BaseException:
        for name, _ in network.processes:
            print(f"===== {name}\n{network.log_tail(name)}", file=sys.stderr)
        raise
    finally:
        network.close()
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def common_horizon(outcomes: list[Outcome]) -> int:
    """The fewest explore runs any network made: the N of Δ@N, so each network is judged alike."""
    return min((len(o.verified_deltas) for o in outcomes), default=0)


def summary(outcomes: list[Outcome], strategy: str, *, horizon: int) -> dict[str, Any]:
    mine = [o for o in outcomes if o.strategy == strategy]
    explore = sum(o.explore for o in mine)
    verified = sum(o.verified for o in mine)
    firsts = [float(o.runs_to_first) for o in mine if o.runs_to_first is not None]
    deltas = [o.best_delta if o.best_delta is not None else 0.0 for o in mine]
    return {
        "strategy": strategy,
        "networks": len(mine),
        "explore": explore,
        "verify": sum(o.verify for o in mine),
        "verified": verified,
        "verified_per_10_explore": 10 * verified / explore if explore else None,
        "networks_with_a_verified_improvement": len(firsts),
        "mean_runs_to_first": _mean(firsts),
        "mean_best_delta": _mean(deltas),  # a network without an improvement counts 0
        "horizon": horizon,
        "mean_best_delta_at_horizon": _mean([o.best_delta_after(horizon) for o in mine]),
        "dead": sum(o.dead for o in mine),
    }


# --- tests of "better than the first strategy" -----------------------------------------------------


def fisher_one_sided(hits: int, runs: int, other_hits: int, other_runs: int) -> float:
    """P(at least `hits` of the pooled hits fall in the first group) if both groups share one rate.

    The one-sided Fisher exact test of "the first group's rate is higher", by the hypergeometric tail.
    """
    total_hits, total_runs = hits + other_hits, runs + other_runs
    denominator = math.comb(total_runs, total_hits)
    upper = min(total_hits, runs)
    return (
        sum(math.comb(runs, k) * math.comb(other_runs, total_hits - k) for k in range(hits, upper + 1))
        / denominator
    )


def sign_test_one_sided(wins: int, losses: int) -> float:
    """P(at least `wins` wins in wins + losses fair coin tosses); ties are left out before calling."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n if n else 1.0


@dataclass(frozen=True)
class Comparison:
    """One strategy against a reference, over the seeds both ran."""

    strategy: str
    reference: str
    rate_p: float  # Fisher, verified improvements per explore run
    wins: int  # seeds where the strategy's Δ@N is lower (better) than the reference's
    losses: int
    ties: int
    sign_p: float


def compare(outcomes: list[Outcome], strategy: str, reference: str, *, horizon: int) -> Comparison:
    mine = {o.seed: o for o in outcomes if o.strategy == strategy}
    theirs = {o.seed: o for o in outcomes if o.strategy == reference}
    wins = losses = ties = 0
    for seed in sorted(mine.keys() & theirs.keys()):
        gap = mine[seed].best_delta_after(horizon) - theirs[seed].best_delta_after(horizon)
        if gap < 0:
            wins += 1
        elif gap > 0:
            losses += 1
        else:
            ties += 1
    return Comparison(
        strategy=strategy,
        reference=reference,
        rate_p=fisher_one_sided(
            sum(o.verified for o in mine.values()),
            sum(o.explore for o in mine.values()),
            sum(o.verified for o in theirs.values()),
            sum(o.explore for o in theirs.values()),
        ),
        wins=wins,
        losses=losses,
        ties=ties,
        sign_p=sign_test_one_sided(wins, losses),
    )


def print_table(outcomes: list[Outcome], strategies: list[str]) -> None:
    horizon = common_horizon(outcomes)
    at = f"Δ@{horizon}"
    header = (
        f"{'strategy':<8} {'seed':>4} {'explore':>7} {'verify':>6} {'verified':>8} {'to first':>8}"
        f" {'pending':>7} {'best Δ':>8} {at:>8} {'dead':>4} {'wall':>5}"
    )
    print(header)
    print("-" * len(header))
    for o in outcomes:
        print(
            f"{o.strategy:<8} {o.seed:>4} {o.explore:>7} {o.verify:>6} {o.verified:>8}"
            f" {_fmt(o.runs_to_first, 'd'):>8} {o.candidates_left:>7} {_fmt(o.best_delta, '+.4f'):>8}"
            f" {o.best_delta_after(horizon):>+8.4f} {o.dead:>4} {o.wall_s:>4.0f}s"
        )
    print()
    print(
        f"{'strategy':<8} {'networks':>8} {'explore':>7} {'verified':>8} {'per 10':>6} {'found':>5}"
        f" {'to first':>8} {'best Δ':>8} {at:>8} {'dead':>4}"
    )
    for strategy in strategies:
        s = summary(outcomes, strategy, horizon=horizon)
        print(
            f"{strategy:<8} {s['networks']:>8} {s['explore']:>7} {s['verified']:>8}"
            f" {_fmt(s['verified_per_10_explore'], '.2f'):>6}"
            f" {s['networks_with_a_verified_improvement']:>2}/{s['networks']:<2}"
            f" {_fmt(s['mean_runs_to_first'], '.1f'):>8} {_fmt(s['mean_best_delta'], '+.4f'):>8}"
            f" {_fmt(s['mean_best_delta_at_horizon'], '+.4f'):>8} {s['dead']:>4}"
        )
    print(
        "\nper 10: verified improvements per 10 explore runs; found: networks with at least one;"
        " to first: mean over those;\nbest Δ: mean best verified val_bpb minus baseline (0 where none);"
        f" {at}: the same over each network's first {horizon} explore runs;"
        "\ndead: runs that changed a GPU_* constant on this CPU track."
    )
    for strategy in strategies[1:]:
        c = compare(outcomes, strategy, strategies[0], horizon=horizon)
        print(
            f"\n{c.strategy} against {c.reference}, one-sided: verified per explore run, Fisher exact"
            f" p = {c.rate_p:.2g}; {at} paired by seed, {c.wins} better, {c.losses} worse, {c.ties} tied,"
            f" sign test p = {c.sign_p:.2g}"
        )


def report(args: argparse.Namespace, outcomes: list[Outcome]) -> dict[str, Any]:
    horizon = common_horizon(outcomes)
    return {
        "settings": {k: v for k, v in vars(args).items() if k not in {"json", "keep", "pool"}},
        "networks": [asdict(o) | {"best_delta": o.best_delta} for o in outcomes],
        "summary": [summary(outcomes, strategy, horizon=horizon) for strategy in args.strategies],
        "comparisons": [
            asdict(compare(outcomes, strategy, args.strategies[0], horizon=horizon))
            for strategy in args.strategies[1:]
        ],
    }


def read_reports(paths: list[Path]) -> list[Outcome]:
    """The networks of earlier `--json` reports, for one table over several batches."""
    outcomes: list[Outcome] = []
    for path in paths:
        try:
            networks = json.loads(path.read_text())["networks"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}: not a report of this script's --json ({exc})") from None
        outcomes.extend(Outcome.from_json(network) for network in networks)
    return outcomes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--strategies", nargs="+", default=["random", "guided"], help="offline strategies to compare"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2], help="worker seeds; one network each")
    parser.add_argument("--experiments", type=int, default=16, help="runs each of the two workers reports")
    parser.add_argument("--budget", type=float, default=5.0, help="the track's training budget in seconds")
    parser.add_argument(
        "--calibration-runs", type=int, default=3, help="baseline runs that measure seed noise (2 or more)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.5,
        help="largest verifier-vs-claim gap; wide, since two workers share the cores and slow each other",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--keep", action="store_true", help="keep each network's folder and logs")
    parser.add_argument(
        "--pool",
        nargs="+",
        type=Path,
        metavar="REPORT",
        help="run nothing: tabulate earlier --json reports together",
    )
    args = parser.parse_args(argv)
    if args.calibration_runs < 2:
        parser.error("--calibration-runs must be 2 or more: promotion needs a measured seed noise")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes: list[Outcome] = read_reports(args.pool) if args.pool else []
    if args.pool:
        args.strategies = [s for s in args.strategies if any(o.strategy == s for o in outcomes)]
    for index, seed in enumerate([] if args.pool else args.seeds):
        # Alternate the order per seed so slow drifts in machine load do not favour one strategy.
        order = args.strategies if index % 2 == 0 else list(reversed(args.strategies))
        for strategy in order:
            outcome = run_network(args, strategy=strategy, seed=seed)
            outcomes.append(outcome)
            print(
                f"{strategy} seed {seed}: {outcome.explore} explore, {outcome.verified} verified,"
                f" best Δ {_fmt(outcome.best_delta, '+.4f')} ({outcome.wall_s:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
    outcomes.sort(key=lambda o: (args.strategies.index(o.strategy), o.seed))
    if args.json:
        print(json.dumps(report(args, outcomes), indent=2))
    else:
        print_table(outcomes, args.strategies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
