"""`coordinator track create` end to end: parquet served over HTTP, built, registered and served."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from coordinator.config import Settings
from coordinator.kv import LocalKV
from coordinator.main import create_app
from coordinator.trackdata import load_tokenizer
from tests.e2e.network import free_port, wait_for

BIN = Path(sys.executable).parent
REPO, REVISION = "acme/tiny-corpus", "0123456789abcdef0123456789abcdef01234567"
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "pe", "du", "zan", "tor", "qui", "mel", "bra", "sho"]


def _write_parquet(path: Path, *, seed: int, docs: int) -> str:
    rng = random.Random(seed)
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(600)]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(20, 80))) + "." for _ in range(docs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": texts, "id": list(range(docs))}), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server laid out like the dataset host, holding two parquet files."""
    root = tmp_path / "mirror"
    base = root / "datasets" / REPO / "resolve" / REVISION
    files = [f"{name}:{_write_parquet(base / name, seed=i, docs=300)}" for i, name in enumerate(["data/a.parquet", "data/b.parquet"])]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout_s=20, what="the mirror")
        yield f"http://127.0.0.1:{port}", files
    finally:
        server.terminate()
        server.wait(timeout=10)


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARN_DATA_DIR": str(data_dir)}
    return subprocess.run([str(BIN / "coordinator"), *args], env=env, capture_output=True, text=True, timeout=300)


def test_track_create_builds_and_registers_a_gpu_track_from_pinned_parquet(
    tmp_path: Path, mirror: tuple[str, list[str]]
) -> None:
    base_url, files = mirror
    data_dir = tmp_path / "coordinator"
    assert _cli(data_dir, "migrate").returncode == 0
    args = ["track", "create", "tiny-gpu", "--hf-repo", REPO, "--revision", REVISION, "--base-url", base_url,
            "--vocab-size", "384", "--seq-len", "64", "--eval-tokens", "1024", "--val-fraction", "0.1",
            "--shard-tokens", "20000", "--hardware-class", "rtx4090-24gb", "--budget-s", "120"]
    for spec in files:
        args += ["--file", spec]
    result = _cli(data_dir, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created track tiny-gpu" in result.stdout
    assert "a held-out pool of" in " ".join(result.stdout.split())

    settings = Settings(data_dir=data_dir, create_builtin_tracks=False, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings, kv=LocalKV(), run_reaper=False)) as client:
        track = client.get("/v1/tracks/tiny-gpu").json()
        spec = track["spec"]
        assert (spec["hardware_class"], spec["vocab_size"], spec["seq_len"], spec["time_budget_s"]) == (
            "rtx4090-24gb", 384, 64, 120.0)
        assets = spec["assets"]
        assert len(assets["train"]) >= 2
        served = {}
        for sha in [*assets["train"], assets["val"], assets["token_bytes"], assets["tokenizer"]]:
            response = client.get(f"/v1/tracks/tiny-gpu/assets/{sha}")
            assert response.status_code == 200
            assert hashlib.sha256(response.content).hexdigest() == sha
            served[sha] = response.content
        # The held-out pool sits in the asset store but is never served.
        with client.app.state.arn.session_factory() as session:  # type: ignore[attr-defined]
            from coordinator.models import Track

            pool = session.get(Track, "tiny-gpu").holdout_sha256
        assert pool is not None and pool not in served
        assert (data_dir / "assets" / pool).is_file()
        refused = client.get(f"/v1/tracks/tiny-gpu/assets/{pool}")
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found")

    tokenizer = load_tokenizer(served[assets["tokenizer"]].decode())
    assert tokenizer.get_vocab_size() == 384
    (tmp_path / "val.npy").write_bytes(served[assets["val"]])
    val = np.load(tmp_path / "val.npy")
    assert val.dtype == np.uint16 and val.size > 1024 and int(val.max()) < 384
    (tmp_path / "bytes.npy").write_bytes(served[assets["token_bytes"]])
    assert np.load(tmp_path / "bytes.npy").shape == (384,)
    # The data came through the download path and is cached by hash for the next build.
    assert len(list((data_dir / "downloads").rglob("*"))) >= 2


def test_track_create_refuses_a_file_whose_hash_does_not_match(tmp_path: Path, mirror: tuple[str, list[str]]) -> None:
    base_url, files = mirror
    data_dir = tmp_path / "coordinator"
    assert _cli(data_dir, "migrate").returncode == 0
    path, _sha = files[0].split(":")
    result = _cli(data_dir, "track", "create", "bad", "--hf-repo", REPO, "--revision", REVISION,
                  "--base-url", base_url, "--file", f"{path}:{'0' * 64}")
    assert result.returncode == 1
    assert "sha256" in (result.stdout + result.stderr)
    assert "Traceback" not in result.stderr
    listed = _cli(data_dir, "track", "list", "--json")
    assert listed.returncode == 0 and '"bad"' not in listed.stdout


def test_migrate_with_tracks_creates_the_built_in_track_once_and_again_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "coordinator"
    assert _cli(data_dir, "migrate").returncode == 0
    assert '"cpu-tiny"' not in _cli(data_dir, "track", "list", "--json").stdout  # the schema alone
    for _ in range(2):  # idempotent: what replicas started afterwards rely on
        done = _cli(data_dir, "migrate", "--tracks")
        assert done.returncode == 0 and "built-in tracks are ready" in done.stdout, done.stderr
    listed = json.loads(_cli(data_dir, "track", "list", "--json").stdout)
    assert [track["id"] for track in listed] == ["cpu-tiny"]
