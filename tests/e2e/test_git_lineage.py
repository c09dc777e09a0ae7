"""A track's lineage as researchers fetch it: stock git and `worker fork` against `coordinator serve`.

The database is seeded through the API (tests/seeding.py) with two promotions, a rejected claim,
a discarded and a crashed experiment and a candidate awaiting verification; real coordinator
processes then serve it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from coordinator.migrate import upgrade
from shared.hashing import short_hash
from tests.e2e.network import BIN, Network
from tests.seeding import SeededTrack, promote_pending, seed, server_env

pytestmark = pytest.mark.slow

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="stock git is not installed: its client is what these tests check")


@dataclass
class Served:
    network: Network
    seeded: SeededTrack
    database_url: str
    env: dict[str, str]

    @property
    def repo_url(self) -> str:
        return f"{self.network.url}/git/{self.seeded.track_id}.git"

    def source(self, variant_hash: str) -> str:
        detail = self.network.get(f"/v1/variants/{variant_hash}?track_id={self.seeded.track_id}")
        return detail["source"]  # type: ignore[no-any-return]


@pytest.fixture
def served(network: Network) -> Iterator[Served]:
    database_url = f"sqlite:///{network.root / 'lineage.sqlite3'}"
    upgrade(database_url)
    seeded = seed(database_url, network.data_dir)
    network.env.update(server_env(database_url, network.data_dir))
    network.start_coordinator()
    yield Served(network, seeded, database_url, network.env)


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)}
    result = subprocess.run([GIT or "git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stderr}"
    return result


def clone(served: Served, where: Path) -> Path:
    git("clone", "--quiet", served.repo_url, "fork", cwd=where)
    return where / "fork"


def trailer(repo: Path, key: str, rev: str = "HEAD") -> list[str]:
    out = git("log", f"--format=%(trailers:key={key},valueonly,separator=%x2C)", rev, cwd=repo).stdout
    return out.splitlines()


@needs_git
def test_a_clone_is_the_verified_lineage_with_its_trailers(served: Served, tmp_path: Path) -> None:
    repo = clone(served, tmp_path)
    seeded = served.seeded
    lineage = [*reversed(seeded.verified), seeded.baseline]  # git log: newest first
    assert trailer(repo, "Variant") == lineage
    subjects = git("log", "--format=%s", cwd=repo).stdout.splitlines()
    assert subjects == ["warmup 100 steps, then cosine decay", "warmup 50 steps, then cosine decay",
                        "Baseline of track seeded-track"]
    # Promoted values as frozen at promotion; the baseline's moves with calibration, so it has none.
    assert trailer(repo, "Val-bpb") == ["0.900000", "0.950000", ""]
    assert trailer(repo, "Verified-by")[0].startswith("bob (run ")
    assert set(trailer(repo, "Track")) == {seeded.track_id}
    assert set(trailer(repo, "Hardware-class")) == {"cpu"}
    authors = git("log", "--format=%an <%ae>", cwd=repo).stdout.splitlines()
    assert authors[0] == "alice <alice@seeded-track.autoresearch.invalid>"
    assert authors[-1] == "baseline <baseline@seeded-track.autoresearch.invalid>"
    assert set(git("log", "--format=%ad", "--date=format:%z", cwd=repo).stdout.split()) == {"+0000"}

    assert (repo / "train.py").read_text() == served.source(seeded.head)
    assert (repo / "program.md").read_text() == "Make val_bpb go down."
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo).stdout.strip() == "main"
    tags = git("tag", "--list", cwd=repo).stdout.split()
    assert sorted(tags) == sorted(f"v/{short_hash(h)}" for h in lineage)
    for digest in lineage:
        assert trailer(repo, "Variant", f"v/{short_hash(digest)}")[0] == digest
    # Nothing that was not verified is in the history.
    everything = git("log", "--all", "--format=%B", cwd=repo).stdout
    for other in (seeded.rejected, seeded.discarded, seeded.crashed, seeded.candidate):
        assert other not in everything


@needs_git
def test_two_coordinators_on_one_database_serve_identical_commit_ids(served: Served, tmp_path: Path) -> None:
    replica = Network(tmp_path / "replica", env=dict(served.env))
    replica.root.mkdir()
    try:
        replica.start_coordinator()
        first = git("ls-remote", served.repo_url, cwd=tmp_path).stdout
        second = git("ls-remote", f"{replica.url}/git/{served.seeded.track_id}.git", cwd=tmp_path).stdout
    finally:
        replica.stop_all()
    assert first == second
    assert len(first.splitlines()) == 2 + len(served.seeded.verified) + 1  # HEAD, main, a tag each


@needs_git
def test_a_pull_after_a_promotion_is_a_fast_forward(served: Served, tmp_path: Path) -> None:
    repo = clone(served, tmp_path)
    before = git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    promoted = promote_pending(served.database_url, served.network.data_dir)
    pulled = git("pull", "--ff-only", "--quiet", cwd=repo)
    assert pulled.returncode == 0
    assert trailer(repo, "Variant")[0] == promoted
    assert git("rev-parse", "HEAD~1", cwd=repo).stdout.strip() == before
    assert (repo / "train.py").read_text() == served.source(promoted)
    git("fetch", "--tags", "--quiet", cwd=repo)
    assert f"v/{short_hash(promoted)}" in git("tag", "--list", cwd=repo).stdout.split()


@needs_git
def test_a_push_is_refused_as_read_only(served: Served, tmp_path: Path) -> None:
    repo = clone(served, tmp_path)
    (repo / "train.py").write_text("def train(ctx):\n    return None\n")
    git("-c", "user.name=r", "-c", "user.email=r@example.invalid", "commit", "--quiet", "-am", "mine", cwd=repo)
    pushed = git("push", "origin", "main", cwd=repo, check=False)
    assert pushed.returncode != 0
    assert "this repository is read-only" in pushed.stderr
    assert "403" in pushed.stderr


@needs_git
def test_a_partial_clone_gets_the_whole_lineage_and_a_shallow_one_is_refused_up_front(
    served: Served, tmp_path: Path
) -> None:
    git("clone", "--quiet", "--filter=blob:none", served.repo_url, "partial", cwd=tmp_path)
    assert (tmp_path / "partial" / "train.py").read_text() == served.source(served.seeded.head)
    shallow = git("clone", "--depth", "1", served.repo_url, "shallow", cwd=tmp_path, check=False)
    assert shallow.returncode != 0
    assert "Server does not support shallow clients" in shallow.stderr


def test_an_unknown_track_is_a_404_that_git_shows(served: Served) -> None:
    response = httpx.get(f"{served.network.url}/git/no-such-track.git/info/refs?service=git-upload-pack")
    assert (response.status_code, response.headers["content-type"]) == (404, "text/plain; charset=utf-8")
    assert response.text == "no track named 'no-such-track'\n"


def test_worker_fork_needs_no_git_and_worker_run_inside_it_finds_the_track(served: Served, tmp_path: Path) -> None:
    no_git = tmp_path / "bin-without-git"
    no_git.mkdir()
    path = os.pathsep.join([str(BIN), str(no_git)])
    assert shutil.which("git", path=path) is None
    env = {**os.environ, "PATH": path}
    url, track = served.network.url, served.seeded.track_id

    forked = subprocess.run([str(BIN / "worker"), "fork", track, "mine", "--coordinator", url], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert forked.returncode == 0, forked.stderr
    assert forked.stdout.splitlines()[0].startswith(f"forked {track} into mine: main is ")
    assert "worker run train.py" in forked.stdout
    assert 'worker submit train.py --hypothesis "..."' in forked.stdout
    assert (tmp_path / "mine" / "train.py").read_text() == served.source(served.seeded.head)

    again = subprocess.run([str(BIN / "worker"), "fork", track, "mine", "--coordinator", url], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120)
    assert (again.returncode, again.stderr) == (1, "error: mine already exists and is not empty; choose another folder\n")
    unknown = subprocess.run([str(BIN / "worker"), "fork", "no-such-track", "--coordinator", url], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert (unknown.returncode, unknown.stderr) == (1, f"error: the coordinator at {url} has no track 'no-such-track'\n")

    # No --coordinator, no --track: the fork supplies both. The seeded track's data files are
    # stand-ins, so the run stops at the harness's setup, after the track was fetched.
    ran = subprocess.run([str(BIN / "worker"), "run", "train.py", "--json", "--home", str(tmp_path / "home")],
                         cwd=tmp_path / "mine", env=env, capture_output=True, text=True, timeout=300)
    summary = json.loads(ran.stdout.splitlines()[-1])
    assert (summary["track_id"], summary["variant_hash"]) == (track, served.seeded.head)
    assert (summary["status"], summary["code"]) == ("crashed", "harness_setup_failed")
