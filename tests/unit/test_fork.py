"""`worker fork`'s origin lookup and its one-line refusals (the clone itself: tests/e2e/test_git_lineage.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from dulwich.repo import Repo
from typer.testing import CliRunner

from worker.cli import app
from worker.fork import ForkOrigin, fork_origin, parse_origin


def make_repo(folder: Path, origin: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    repo = Repo.init(str(folder))
    if origin is not None:
        config = repo.get_config()
        config.set((b"remote", b"origin"), b"url", origin.encode())
        config.write_to_path()
    repo.close()
    return folder


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/git/cpu-tiny.git", ForkOrigin("http://127.0.0.1:8000", "cpu-tiny")),
        ("https://arn.example.org/research/git/h100-5min.git/", ForkOrigin("https://arn.example.org/research", "h100-5min")),
        ("http://host/git/cpu-tiny", ForkOrigin("http://host", "cpu-tiny")),
        ("https://github.com/someone/cpu-tiny.git", None),
        ("git@host:git/cpu-tiny.git", None),
        ("http://host/git/", None),
    ],
)
def test_a_lineage_url_names_its_coordinator_and_track(url: str, expected: ForkOrigin | None) -> None:
    assert parse_origin(url) == expected


def test_the_origin_is_found_from_any_folder_or_file_inside_a_fork(tmp_path: Path) -> None:
    fork = make_repo(tmp_path / "fork", "http://127.0.0.1:8000/git/cpu-tiny.git")
    (fork / "experiments" / "deep").mkdir(parents=True)
    (fork / "train.py").write_text("")
    expected = ForkOrigin("http://127.0.0.1:8000", "cpu-tiny")
    assert fork_origin(fork) == expected
    assert fork_origin(fork / "train.py") == expected
    assert fork_origin(fork / "experiments" / "deep") == expected


def test_outside_a_fork_there_is_no_origin(tmp_path: Path) -> None:
    assert fork_origin(tmp_path) is None
    assert fork_origin(make_repo(tmp_path / "other", "https://github.com/someone/project.git")) is None
    assert fork_origin(make_repo(tmp_path / "local", None)) is None
    # The nearest repository decides, as for git: one nested in a fork is not the fork.
    fork = make_repo(tmp_path / "fork", "http://host/git/cpu-tiny.git")
    assert fork_origin(make_repo(fork / "vendored", "https://github.com/someone/lib.git")) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fork_refusals_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    url = f"http://127.0.0.1:{_closed_port()}"
    runner = CliRunner()
    cases = {
        ("fork", "cpu-tiny", "taken", "--coordinator", url): "error: taken already exists and is not empty; choose another folder\n",
        ("fork", "cpu-tiny", "--coordinator", url): f"error: cannot reach the coordinator at {url}: Connection refused\n",
        ("fork", "../x", "--coordinator", url): "error: not a track id: '../x'\n",
    }
    for args, message in cases.items():
        result = runner.invoke(app, list(args))
        assert (result.exit_code, result.stderr) == (1, message), args
    assert not (tmp_path / "cpu-tiny").exists()  # a failed clone leaves nothing behind
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_run_outside_a_fork_asks_for_the_coordinator_and_track(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("def train(ctx):\n    pass\n")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "train.py")])
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'train.py'} is not in a `worker fork` folder: pass --coordinator URL and --track ID\n"
