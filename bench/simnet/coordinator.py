"""A real coordinator for the simulation: prepared with a synthetic track and served by
`coordinator serve` in a process of its own, on SQLite or on a fresh PostgreSQL schema.

The track's assets are small placeholder files (simulated workers never download them); its
baseline is the real baseline/train.py, so the real offline agent and the real policy see real
sources.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
TRACK = "sim"
HARDWARE_CLASS = "sim"


@dataclass(frozen=True)
class TrackPolicy:
    quorum: int = 2
    tolerance: float = 0.05
    calibration_runs: int = 2
    noise_sigma: float | None = None
    claim_margin: float = 1.0
    max_verifications: int = 16
    time_budget_s: float = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _postgres_schema(base_url: str) -> Iterator[str]:
    import sqlalchemy

    schema = f"arn_sim_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'create schema "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'drop schema "{schema}" cascade'))
        admin.dispose()


def _prepare(database_url: str, data_dir: Path, policy: TrackPolicy, *, root: Path) -> None:
    """Migrate the database and create the simulation's track, with the code under `root`."""
    script = f"""
import hashlib, sys
from pathlib import Path
sys.path.insert(0, {str(root)!r})
from coordinator.config import Settings
from coordinator.db import make_engine, make_session_factory
from coordinator.keys import load_signing_key
from coordinator.migrate import upgrade
from coordinator.services.tracks import TrackParams, create_track
from shared.track_spec import TrackAssets

settings = Settings(data_dir=Path({str(data_dir)!r}), database_url={database_url!r}, create_builtin_tracks=False)
upgrade(settings.resolved_database_url)
settings.assets_dir.mkdir(parents=True, exist_ok=True)
shas = {{}}
for name in ("train", "val", "token_bytes", "tokenizer"):
    data = f"simulated {{name}}".encode()
    shas[name] = hashlib.sha256(data).hexdigest()
    (settings.assets_dir / shas[name]).write_bytes(data)
extra = dict(noise_sigma={policy.noise_sigma!r}, claim_margin={policy.claim_margin!r},
             max_verifications={policy.max_verifications!r})
fields = TrackParams.__dataclass_fields__
params = TrackParams(
    id={TRACK!r}, name="Simulated track", hardware_class={HARDWARE_CLASS!r}, vocab_size=512, seq_len=128,
    eval_tokens=32768, eval_batch_size=16, time_budget_s={policy.time_budget_s!r}, grace_s=12.0,
    quorum={policy.quorum!r},
    tolerance={policy.tolerance!r}, calibration_runs={policy.calibration_runs!r},
    **{{k: v for k, v in extra.items() if k in fields}},
)
factory = make_session_factory(make_engine(settings.resolved_database_url))
with factory() as session:
    create_track(session, params, key=load_signing_key(settings),
                 assets=TrackAssets(train=(shas["train"],), val=shas["val"], token_bytes=shas["token_bytes"],
                                    tokenizer=shas["tokenizer"]),
                 baseline=Path({str(REPO_ROOT / "baseline" / "train.py")!r}).read_text())
    session.commit()
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root)


@dataclass
class Served:
    """The coordinator processes serving one database: replicas, each on its own port."""

    urls: list[str]
    processes: list[subprocess.Popen[bytes]]
    database_url: str

    @property
    def url(self) -> str:
        return self.urls[0]


@contextmanager
def serve(
    *, database: str, workdir: Path, policy: TrackPolicy, root: Path = REPO_ROOT, serve_workers: int = 1,
    replicas: int = 1, redis_url: str | None = None,
) -> Iterator[Served]:
    """A prepared coordinator serving on free ports: `replicas` processes of `coordinator serve`,
    one database and one data folder. `database` is "sqlite" or a PostgreSQL URL (a fresh schema is
    made in it and dropped afterwards); several replicas, or `serve_workers` > 1, need PostgreSQL
    and `redis_url` (the replicas' keys get a prefix of their own). `root` is the checkout whose
    coordinator runs, so an earlier version's policy can be measured from the same seeds."""
    data_dir = workdir / f"coordinator-{uuid.uuid4().hex[:8]}"
    with _database(database, data_dir) as database_url:
        _prepare(database_url, data_dir, policy, root=root)
        env = {
            **os.environ,
            "ARN_DATA_DIR": str(data_dir),
            "ARN_DATABASE_URL": database_url,
            "ARN_CREATE_BUILTIN_TRACKS": "false",
            "ARN_WRITES_PER_MINUTE_PER_WORKER": "1000000",
            "ARN_WRITES_PER_MINUTE_PER_IP": "100000000",
            "ARN_NEW_ACCOUNTS_PER_HOUR_PER_IP": "100000000",
            "PYTHONPATH": str(root),
        }
        if redis_url:
            env["ARN_REDIS_URL"] = redis_url
            env["ARN_REDIS_PREFIX"] = f"arn-sim-{uuid.uuid4().hex[:8]}:"
        served = Served(urls=[], processes=[], database_url=database_url)
        logs = []
        try:
            for replica in range(replicas):
                port = _free_port()
                log_path = data_dir / f"serve-{replica}.log"
                logs.append(log_path.open("wb"))
                command = [sys.executable, "-c", "from coordinator.cli import app; app()", "serve", "--port", str(port),
                           "--log-level", "warning", "--workers", str(serve_workers)]  # fmt: skip
                process = subprocess.Popen(command, cwd=root, env=env, stdout=logs[-1], stderr=subprocess.STDOUT)
                served.processes.append(process)
                served.urls.append(f"http://127.0.0.1:{port}")
            for url, process, replica in zip(served.urls, served.processes, range(replicas), strict=True):
                _wait_until_up(url, process, data_dir / f"serve-{replica}.log")
            yield served
        finally:
            for process in served.processes:
                if process.poll() is None:
                    process.terminate()
            for process in served.processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for log in logs:
                log.close()


@contextmanager
def _database(database: str, data_dir: Path) -> Iterator[str]:
    if database == "sqlite":
        data_dir.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{data_dir / 'sim.db'}"
    else:
        with _postgres_schema(database) as url:
            yield url


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the coordinator exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the coordinator did not come up within 60 s")


def baseline_hash() -> str:
    return hashlib.sha256((REPO_ROOT / "baseline" / "train.py").read_bytes()).hexdigest()
