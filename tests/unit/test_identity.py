"""The worker's identity: a private key, per-coordinator state, and a pinned coordinator key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shared.signing import SigningKey
from worker.identity import (
    CoordinatorKeyMismatch,
    CoordinatorState,
    HomeInUse,
    IdentityError,
    WorkerHome,
    normalize_url,
)

COORDINATOR_KEY = SigningKey.from_raw(b"\x01" * 32).public_key
OTHER_KEY = SigningKey.from_raw(b"\x02" * 32).public_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_created_once_with_mode_0600_and_reloaded(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")

    key = home.signing_key()

    assert mode(home.key_path) == 0o600
    assert WorkerHome(tmp_path / "home").signing_key().public_key == key.public_key


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")
    home.signing_key()
    home.key_path.chmod(0o644)

    with pytest.raises(IdentityError, match="readable by other users; run: chmod 600"):
        home.signing_key()


def test_state_holding_the_token_is_saved_with_mode_0600(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")
    state = home.pin_coordinator("http://coord.example:8000/", COORDINATOR_KEY)
    state.worker_id, state.token, state.account, state.name = "w1", "secret", "alice", "box"

    home.save_state(state)

    path = home.state_path("http://coord.example:8000")
    assert mode(path) == 0o600
    assert home.load_state("HTTP://Coord.Example:8000") == CoordinatorState(
        url="http://coord.example:8000",
        public_key=COORDINATOR_KEY,
        worker_id="w1",
        token="secret",
        account="alice",
        name="box",
    )


def test_the_coordinator_key_is_pinned_at_first_contact_and_a_different_one_refused(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")
    home.pin_coordinator("http://coord.example", COORDINATOR_KEY)

    assert home.pin_coordinator("http://coord.example", COORDINATOR_KEY).public_key == COORDINATOR_KEY
    with pytest.raises(CoordinatorKeyMismatch) as caught:
        home.pin_coordinator("http://coord.example", OTHER_KEY)

    message = str(caught.value)
    assert message.startswith("REFUSING http://coord.example: it presents signing key")
    assert str(home.state_path("http://coord.example")) in message
    assert home.load_state("http://coord.example").public_key == COORDINATOR_KEY  # type: ignore[union-attr]


def test_each_coordinator_has_its_own_state(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")
    home.pin_coordinator("http://a.example", COORDINATOR_KEY)
    home.pin_coordinator("http://b.example", OTHER_KEY)

    assert home.state_path("http://a.example") != home.state_path("http://b.example")
    assert home.load_state("http://b.example").public_key == OTHER_KEY  # type: ignore[union-attr]


def test_a_second_daemon_on_the_same_home_is_refused_until_the_first_unlocks(tmp_path: Path) -> None:
    first, second = WorkerHome(tmp_path / "home"), WorkerHome(tmp_path / "home")
    first.lock()

    with pytest.raises(HomeInUse, match="another worker is already running with home"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()


def test_a_damaged_state_file_names_itself(tmp_path: Path) -> None:
    home = WorkerHome(tmp_path / "home")
    path = home.state_path("http://coord.example")
    path.parent.mkdir(parents=True)
    path.write_text("{broken")

    with pytest.raises(IdentityError, match="is damaged"):
        home.load_state("http://coord.example")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("http://Coord.Example:8000/", "http://coord.example:8000"),
        ("  https://coord.example/base/ ", "https://coord.example/base"),
    ],
)
def test_urls_are_normalized(raw: str, normal: str) -> None:
    assert normalize_url(raw) == normal


@pytest.mark.parametrize("raw", ["coord.example", "ftp://coord.example", "http://"])
def test_a_url_that_is_not_http_is_refused(raw: str) -> None:
    with pytest.raises(IdentityError, match="not a coordinator URL"):
        normalize_url(raw)
