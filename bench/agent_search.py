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
- dead: experiments that changed a constant of the other hardware (GPU_* on this CPU track),
  which cannot change the model and so are runs of pure seed noise.

    python bench/agent_search.py                        # 2 seeds x 2 strategies, about 12 minutes
    python bench/agent_search.py --seeds 1 2 3 4 5 6 --experiments 24 --json > agent_search.json

Both strategies get the same worker seeds (`--seed N` for one account, `N + 1000` for the other),
and for each seed they run back to back, in alternating order, so load from other processes on a
shared machine falls on both alike. Runs are not bit-reproducible: the coordinator draws each
lease's seed (data order, initialisation) at random, and under a fixed time budget the number of
steps depends on the machine's load. Read the figures as one noisy sample; more seeds narrow it.
"""

from __future__ import annotations

import argparse
import json
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
from dataclasses import asdict, dataclass
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

    @property
    def best_delta(self) -> float | None:
        if self.best_val_bpb is None or self.baseline_val_bpb is None:
            return None
        return self.best_val_bpb - self.baseline_val_bpb


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


def summary(outcomes: list[Outcome], strategy: str) -> dict[str, Any]:
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
        "dead": sum(o.dead for o in mine),
    }


def print_table(outcomes: list[Outcome], strategies: list[str]) -> None:
    header = f"{'strategy':<8} {'seed':>4} {'explore':>7} {'verify':>6} {'verified':>8} {'to first':>8} {'pending':>7} {'best Δ':>8} {'dead':>4} {'wall':>5}"
    print(header)
    print("-" * len(header))
    for o in outcomes:
        print(
            f"{o.strategy:<8} {o.seed:>4} {o.explore:>7} {o.verify:>6} {o.verified:>8}"
            f" {_fmt(o.runs_to_first, 'd'):>8} {o.candidates_left:>7} {_fmt(o.best_delta, '+.4f'):>8}"
            f" {o.dead:>4} {o.wall_s:>4.0f}s"
        )
    print()
    print(
        f"{'strategy':<8} {'networks':>8} {'explore':>7} {'verified':>8} {'per 10':>6} {'found':>5}"
        f" {'to first':>8} {'best Δ':>8} {'dead':>4}"
    )
    for strategy in strategies:
        s = summary(outcomes, strategy)
        print(
            f"{strategy:<8} {s['networks']:>8} {s['explore']:>7} {s['verified']:>8}"
            f" {_fmt(s['verified_per_10_explore'], '.2f'):>6}"
            f" {s['networks_with_a_verified_improvement']:>2}/{s['networks']:<2}"
            f" {_fmt(s['mean_runs_to_first'], '.1f'):>8} {_fmt(s['mean_best_delta'], '+.4f'):>8} {s['dead']:>4}"
        )
    print(
        "\nper 10: verified improvements per 10 explore runs; found: networks with at least one;"
        " to first: mean over those;\nbest Δ: mean best verified val_bpb minus baseline (0 where none);"
        " dead: runs that changed a GPU_* constant on this CPU track."
    )


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
    args = parser.parse_args(argv)
    if args.calibration_runs < 2:
        parser.error("--calibration-runs must be 2 or more: promotion needs a measured seed noise")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes: list[Outcome] = []
    for index, seed in enumerate(args.seeds):
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
        report = {
            "settings": {k: v for k, v in vars(args).items() if k not in {"json", "keep"}},
            "networks": [asdict(o) | {"best_delta": o.best_delta} for o in outcomes],
            "summary": [summary(outcomes, strategy) for strategy in args.strategies],
        }
        print(json.dumps(report, indent=2))
    else:
        print_table(outcomes, args.strategies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
