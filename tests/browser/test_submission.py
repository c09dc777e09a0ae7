"""A researcher's variant, end to end: `worker fork`, then `worker submit` from the fork against a real
`coordinator serve`, verified by a real worker of another account, then on the leaderboard JSON, on
the track page open in a browser (live, with no reload), the variant page and the fork's next fetch."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dulwich import porcelain
from dulwich.objects import Commit
from dulwich.repo import Repo
from playwright.sync_api import expect

from shared.hashing import short_hash, variant_hash
from tests.browser.conftest import Tab
from tests.e2e.network import BIN, Network, wait_for
from tests.e2e.test_network import SETTINGS

pytestmark = pytest.mark.slow

# At a 4 s budget on a CPU the baseline makes a dozen steps; a quarter of its width makes five
# times as many and ends far lower (3.1 against 3.5 to 3.8 bpb, measured on two loaded cores).
SMALLER = {"CPU_DEPTH = 4": "CPU_DEPTH = 2", "CPU_D_MODEL = 128": "CPU_D_MODEL = 64"}


def smaller_model(source: str) -> str:
    for old, new in SMALLER.items():
        assert old in source, old
        source = source.replace(old, new)
    return source


def worker(network: Network, *args: str, cwd: Path | None = None, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "worker"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, cwd=cwd)


def submit(network: Network, file: Path, *extra: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """`worker submit` from the fork that holds `file`: the coordinator and track come from its clone."""
    return worker(network, "submit", str(file), "--account", "rita", "--home", str(network.root / "researcher"),
                  *extra, cwd=file.parent, timeout_s=timeout_s)


def head_commit(fork: Path) -> Commit:
    with Repo(str(fork)) as repo:
        commit = repo[repo.refs[b"HEAD"]]
    assert isinstance(commit, Commit)
    return commit


def test_a_submitted_variant_is_verified_by_another_account_and_promoted(network: Network, tab: Tab) -> None:
    network.start_coordinator(**SETTINGS)
    fork = network.root / "my-fork"
    forked = worker(network, "fork", "cpu-tiny", str(fork), "--coordinator", network.url)
    assert forked.returncode == 0, forked.stderr
    baseline_commit = head_commit(fork)
    file = fork / "train.py"
    file.write_text(smaller_model(file.read_text()))
    digest = variant_hash(file.read_text())

    hostile = fork / "hostile.py"
    hostile.write_text(file.read_text() + "import socket\n")
    refused = submit(network, hostile, "--hypothesis", "open a socket")
    assert refused.returncode == 1
    line = hostile.read_text().count("\n")
    assert f"{hostile}:{line}:1:" in refused.stderr, refused.stderr  # the policy's line, then its code

    network.start_worker("bob")
    queued = submit(network, file, "--hypothesis", "a quarter of the width: more steps in the budget")
    assert queued.returncode == 0, queued.stderr
    assert f"submitted {short_hash(digest)} to cpu-tiny" in queued.stdout
    again = submit(network, file, "--hypothesis", "a quarter of the width: more steps in the budget")
    assert again.returncode == 0 and "already submitted" in again.stdout  # a retry creates nothing

    page: Any = tab.page
    tab.open(f"{network.url}/tracks/cpu-tiny", name="track-submission-before")
    expect(page.locator(".live-status")).to_have_text("live")
    page.evaluate("window.stayed = true")
    waited = submit(network, file, "--hypothesis", "a quarter of the width: more steps in the budget", "--wait",
                    timeout_s=480)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert waited.stdout.rstrip().endswith("verified"), waited.stdout

    detail = network.get(f"/v1/variants/{digest}?track_id=cpu-tiny")
    assert (detail["status"], detail["origin"]) == ("verified", "person")
    verifiers = {r["account"] for r in detail["runs"] if r["kind"] == "verify"}
    assert verifiers and "rita" not in verifiers
    board = network.get("/v1/tracks/cpu-tiny/leaderboard")["entries"]
    assert any(e["hash"] == digest and e["origin"] == "person" for e in board)
    wait_for(lambda: network.get("/v1/tracks/cpu-tiny/head")["hash"] == digest or None, timeout_s=60,
             what="the submission to be the head")
    expect(page.locator(f'#leaderboard tr[data-hash="{digest}"]')).to_have_count(1, timeout=10_000)
    assert page.evaluate("window.stayed") is True, "the page reloaded instead of updating in place"
    tab.screenshot("track-submission-after")
    assert tab.errors == []

    # The fork's next fetch brings the new head: one commit on the one it was forked at.
    porcelain.fetch(str(fork), errstream=io.BytesIO(), outstream=io.BytesIO())
    with Repo(str(fork)) as repo:
        promoted = repo[repo.refs[b"refs/remotes/origin/main"]]
    assert isinstance(promoted, Commit) and promoted.parents == [baseline_commit.id]
    message = promoted.message.decode()
    assert message.startswith("a quarter of the width") and f"Variant: {digest}" in message
    assert "Verified-by: bob" in message
    page = network.get(f"/variants/{digest}?track_id=cpu-tiny")
    assert short_hash(digest) in page and "person" in page
