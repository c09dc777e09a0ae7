"""The layers behind the static policy, shown on the variants the policy refuses: each runs with
the policy switched off (`run_local(enforce_policy=False)`, which no command line reaches) and is
stopped by the sandbox, or made harmless by the harness. The policy is a first line, not the
only one.

Each variant reports what it ran into by raising it, so the run is "crashed" with the variant's
own exception as the reason: the errno in it is the sandbox's answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shared.track_spec import TrackSpec
from tests.redteam.conftest import require_layers, run_variant, variant
from worker.client import CoordinatorClient
from worker.sandbox import PROJECT_ROOT, SandboxConfig


def crashed_with(result_reason: str | None, exception: str) -> str:
    prefix = f"train() raised {exception}: "
    assert result_reason is not None and result_reason.startswith(prefix), result_reason
    return result_reason[len(prefix) :]


def test_reading_the_val_shard_finds_no_such_file(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    require_layers("filesystem")
    spec, data_dir = track
    val = data_dir / spec.assets.val
    source = variant("read_val_shard").replace('"data/val.npy"', repr(str(val)))

    result = run_variant(tmp_path, track, source, enforce_policy=False)

    assert (result.status, result.layer, result.code) == ("crashed", "harness", "variant_crashed")
    assert crashed_with(result.reason, "FileNotFoundError") == f"[Errno 2] No such file or directory: '{val}'"
    assert val.is_file()  # there all along, for the worker


def test_reading_a_file_of_the_volunteer_finds_no_such_file(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    require_layers("filesystem")
    secret = tmp_path / "secrets" / "key.npy"
    secret.parent.mkdir()
    np.save(secret, np.arange(4))
    source = variant("read_any_file").replace('"/root/.ssh/id_ed25519"', repr(str(secret)))

    result = run_variant(tmp_path, track, source, enforce_policy=False)

    assert crashed_with(result.reason, "FileNotFoundError") == f"[Errno 2] No such file or directory: '{secret}'"


def test_writing_into_the_worker_package_hits_a_read_only_file_system(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    require_layers("filesystem")
    target = PROJECT_ROOT / "worker" / f"planted-{random.randrange(10**9)}.py"
    source = variant("write_outside_scratch").replace('"/root/.bashrc"', repr(str(target)))

    result = run_variant(tmp_path, track, source, enforce_policy=False)

    assert crashed_with(result.reason, "OSError") == f"[Errno 30] Read-only file system: '{target}'"
    assert not target.exists()


def test_a_spawned_process_is_confined_like_the_variant(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    require_layers("filesystem")
    (tmp_path / "outside").mkdir()
    target = tmp_path / "outside" / "planted"
    source = variant("spawn_process").replace('"/root/planted"', repr(str(target)))

    result = run_variant(tmp_path, track, source, enforce_policy=False)

    assert crashed_with(result.reason, "CalledProcessError").endswith("returned non-zero exit status 2.")
    assert f"cannot create {target}: Directory nonexistent" in (tmp_path / "run" / "harness.log").read_text()
    assert not target.exists()


def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    config = SandboxConfig(process_allowance=48)
    require_layers("processes", config=config)

    result = run_variant(tmp_path, track, variant("fork_bomb"), sandbox=config, enforce_policy=False)

    assert (result.status, result.layer, result.code) == ("crashed", "sandbox", "process_limit")
    assert result.reason is not None
    assert result.reason.endswith("train() raised BlockingIOError: [Errno 11] Resource temporarily unavailable")


def test_a_patched_cross_entropy_does_not_reach_the_harness_score(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    result = run_variant(tmp_path, track, variant("monkeypatch_cross_entropy"), enforce_policy=False)

    # The harness bound its cross_entropy before any variant ran: the uniform model's true 8 bits
    # per byte, not the patched function's 0.
    assert (result.status, result.layer, result.code) == ("ok", None, None), result.log_tail
    assert result.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-6)


# --- the network: the worker reaches the coordinator, the variant does not ------------------------


@pytest.fixture(scope="module")
def coordinator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `coordinator serve` on 127.0.0.1, the address a variant would phone."""
    from tests.e2e.network import Network

    network = Network(tmp_path_factory.mktemp("network"))
    try:
        network.start_coordinator(ARN_CPU_TINY_BUDGET_S="3")
        yield network.url
    finally:
        network.stop_all()


@pytest.mark.parametrize(
    ("config", "error"),
    [
        # bubblewrap's namespace has a loopback of its own, up, with nothing listening on it.
        (SandboxConfig(), "ConnectionRefusedError: [Errno 111] Connection refused"),
        # unshare's namespace has a loopback that is down: no route at all.
        (SandboxConfig(filesystem=False), "OSError: [Errno 101] Network is unreachable"),
    ],
    ids=["bubblewrap", "unshare"],
)
def test_the_variant_cannot_connect_to_the_coordinator_that_the_worker_reaches(
    tmp_path: Path, track: tuple[TrackSpec, Path], coordinator_url: str, config: SandboxConfig, error: str
) -> None:
    require_layers("network", config=config)
    port = int(coordinator_url.rsplit(":", 1)[1])
    source = variant("open_socket").replace("HOST, PORT = \"127.0.0.1\", 9", f'HOST, PORT = "127.0.0.1", {port}')
    assert str(port) in source

    with CoordinatorClient(coordinator_url) as client:
        before = client.info()
        result = run_variant(tmp_path, track, source, sandbox=config, enforce_policy=False)
        after = client.info()

    exception, message = error.split(": ", 1)
    assert crashed_with(result.reason, exception) == message
    assert before.public_key == after.public_key  # the worker's own connection worked, before and after
