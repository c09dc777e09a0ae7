"""The lineage repository as the coordinator builds and serves it: ids that depend only on frozen
facts, a cache that rebuilds on promotion and revocation, and git's HTTP routes (read-only)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from dulwich.objects import Commit
from dulwich.repo import MemoryRepo
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from coordinator.models import Track
from coordinator.services.lineage_repo import LineageRepos
from coordinator.services.tracks import TrackParams
from shared.hashing import short_hash
from tests.api.conftest import TRACK, Coordinator, calibrate
from tests.seeding import SEEDED_TRACK, promote_pending, seed

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def track_params(track_params: TrackParams) -> TrackParams:
    return dataclasses.replace(track_params, quorum=2)  # two verifiers, so an audit can refute them


def refs(repo: MemoryRepo) -> dict[str, str]:
    return {name.decode(): sha.decode() for name, sha in repo.get_refs().items()}


def lineage_refs(coordinator: Coordinator, track_id: str = TRACK, repos: LineageRepos | None = None) -> dict[str, str]:
    with coordinator.session() as session:
        repo = (repos or LineageRepos()).get(session, session.get(Track, track_id))
        assert repo is not None
        return refs(repo)


def variant_of(repo: MemoryRepo, ref: bytes) -> str:
    commit = repo[repo.refs[ref]]
    assert isinstance(commit, Commit)
    return next(line for line in commit.message.decode().splitlines() if line.startswith("Variant: "))[9:]


_BUILD_ELSEWHERE = """
import json, sys
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from coordinator.models import Track
from coordinator.services.lineage_repo import LineageRepos
with Session(create_engine(sys.argv[1])) as session:
    repo = LineageRepos().get(session, session.get(Track, sys.argv[2]))
    print(json.dumps({k.decode(): v.decode() for k, v in repo.get_refs().items()}))
"""


def test_every_process_builds_the_same_commit_ids_from_one_database(database_url: str, tmp_path: Path) -> None:
    seed(database_url, tmp_path / "data")
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            track = session.get(Track, SEEDED_TRACK)
            first, second = refs(LineageRepos().get(session, track)), refs(LineageRepos().get(session, track))
    finally:
        engine.dispose()
    elsewhere = subprocess.run(
        [sys.executable, "-c", _BUILD_ELSEWHERE, database_url, SEEDED_TRACK],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    assert first == second == json.loads(elsewhere.stdout)
    assert first["HEAD"] == first["refs/heads/main"]


def test_a_promotion_adds_a_commit_on_top_and_calibration_changes_no_id(
    coordinator: Coordinator, make_worker
) -> None:
    alice, bob, carol = make_worker("a1", "alice"), make_worker("b1", "bob"), make_worker("c1", "carol")
    calibrate(coordinator, [1.00, 1.00])
    repos = LineageRepos()
    before = lineage_refs(coordinator, repos=repos)
    claim = alice.run(alice.lease(), 0.90, hypothesis="cosine decay to zero")
    bob.run(bob.lease(), 0.91)
    carol.run(carol.lease(), 0.90)
    promoted = lineage_refs(coordinator, repos=repos)
    tag = f"refs/tags/v/{short_hash(claim['variant_hash'])}"
    assert promoted[tag] == promoted["refs/heads/main"] != before["refs/heads/main"]
    with coordinator.session() as session:
        repo = repos.get(session, session.get(Track, TRACK))
        head = repo[repo.refs[b"refs/heads/main"]]
        assert head.parents == [before["refs/heads/main"].encode()]  # a fast-forward for every clone
        assert head.message.decode().startswith("cosine decay to zero\n\nVariant: ")
        assert b"Val-bpb: 0.905000" in head.message  # the verifiers' mean, frozen at promotion
    # Calibration moves the head's shown val_bpb; the commit keeps the value it was promoted with.
    calibrate(coordinator, [0.80, 0.81], control_bpb=1.00)
    assert lineage_refs(coordinator) == promoted


def test_a_revoked_head_leaves_main_and_loses_its_tag(coordinator: Coordinator, make_worker) -> None:
    liar, stamp1, stamp2 = make_worker("l1", "liar"), make_worker("s1", "stamp1"), make_worker("s2", "stamp2")
    calibrate(coordinator, [1.00, 1.00])
    repos = LineageRepos()
    baseline = lineage_refs(coordinator, repos=repos)
    fake = liar.run(liar.lease(), 0.50)
    stamp1.run(stamp1.lease(), 0.50)
    stamp2.run(stamp2.lease(), 0.50)
    tag = f"refs/tags/v/{short_hash(fake['variant_hash'])}"
    assert tag in lineage_refs(coordinator, repos=repos)
    for name in ("h1", "h2"):  # accounts that took no part measure no gain: the promotion is revoked
        honest = make_worker(name, name)
        honest.run(honest.lease(), 1.00, control_bpb=1.00)
    assert lineage_refs(coordinator, repos=repos) == baseline


def test_the_cache_serves_one_repository_until_the_lineage_changes(database_url: str, tmp_path: Path) -> None:
    seed(database_url, tmp_path / "data")
    repos = LineageRepos()
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            first = repos.get(session, session.get(Track, SEEDED_TRACK))
            assert repos.get(session, session.get(Track, SEEDED_TRACK)) is first
        promoted = promote_pending(database_url, tmp_path / "data")
        with Session(engine) as session:
            rebuilt = repos.get(session, session.get(Track, SEEDED_TRACK))
    finally:
        engine.dispose()
    assert rebuilt is not first
    assert variant_of(rebuilt, b"refs/heads/main") == promoted


def test_git_routes_advertise_main_and_refuse_pushes(coordinator: Coordinator) -> None:
    client = coordinator.client
    advertised = client.get(f"/git/{TRACK}.git/info/refs?service=git-upload-pack")
    assert advertised.status_code == 200
    assert advertised.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert advertised.content.startswith(b"001e# service=git-upload-pack\n0000")
    assert b"symref=HEAD:refs/heads/main" in advertised.content
    assert b" refs/heads/main\n" in advertised.content
    assert client.get(f"/git/{TRACK}/info/refs?service=git-upload-pack").content == advertised.content

    read_only = ("this repository is read-only: a track's lineage grows only by verification."
                 ' Submit a variant with `worker submit train.py --hypothesis "..."`.\n')
    for response in (client.get(f"/git/{TRACK}.git/info/refs?service=git-receive-pack"),
                     client.post(f"/git/{TRACK}.git/git-receive-pack", content=b"0000")):
        assert (response.status_code, response.text) == (403, read_only)
    unknown = client.get("/git/nope.git/info/refs?service=git-upload-pack")
    assert (unknown.status_code, unknown.text) == (404, "no track named 'nope'\n")
    dumb = client.get(f"/git/{TRACK}.git/info/refs")
    assert dumb.status_code == 403
    wrong_type = client.post(f"/git/{TRACK}.git/git-upload-pack", content=b"0000")
    assert (wrong_type.status_code, wrong_type.text) == (415, "expected Content-Type application/x-git-upload-pack-request\n")
