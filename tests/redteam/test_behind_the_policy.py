"""The layers behind the static policy, shown on the variants the policy refuses: each runs with
the policy switched off (`Executor.run(enforce_policy=False)`, which no command line reaches).

With every layer on, the run-time guard in the variant's process stops each payload where it
happens, with a stable `guard_*` code, or the process split leaves it nothing to change: the
host's own checksum, patched in the variant's process, is not what catches test-time training.
Then each sandbox layer is shown on its own, with the guard switched off: the filesystem hides
the val shard and keeps a spawned shell from writing outside scratch, the process limit stops a
fork bomb, and the network namespace keeps the variant from a server the worker itself reaches.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redteam.conftest import (
    Case,
    Runs,
    Track,
    assert_no_score,
    decided,
    require_layers,
    set_constant,
)
from worker.execution.reasons import public_reason
from worker.execution.sandbox import PROJECT_ROOT, SandboxConfig

GUARD_OFF = SandboxConfig(guard=False)
GUARD_OFF_UNSHARE = SandboxConfig(guard=False, filesystem=False)  # unshare's namespaces, no bubblewrap
FORK_LIMIT = SandboxConfig(guard=False, process_allowance=48)


def val_path(source: str, home: Path, track: Track) -> str:
    spec, data_dir = track
    return source.replace('"data/val.npy"', repr(str(data_dir / spec.assets.val)))


def outside(name: str) -> functools.partial[str]:
    """An edit pointing the variant's `name` constant at a file in a folder of the worker's, outside scratch."""
    return functools.partial(_outside, name)


def _outside(name: str, source: str, home: Path, track: Track) -> str:
    (home / "outside").mkdir(exist_ok=True)
    return set_constant(source, name, str(home / "outside" / "planted"))


def into_worker_package(source: str, home: Path, track: Track) -> str:
    return set_constant(source, "TARGET", str(PROJECT_ROOT / "worker" / f"planted-{home.name}.py"))


@functools.cache
def listener() -> socket.socket:
    """A server on 127.0.0.1 that this process (the worker) reaches: the address a variant would phone."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    server.settimeout(0.1)
    return server


def to_listener(source: str, home: Path, track: Track) -> str:
    port = listener().getsockname()[1]
    return source.replace('HOST, PORT = "127.0.0.1", 9', f'HOST, PORT = "127.0.0.1", {port}')


def policy_off(variant: str, **options: object) -> Case:
    return Case(variant, enforce_policy=False, **options)  # type: ignore[arg-type]


CASES = {
    # every layer on: the guard, or the process split
    "read_val_shard": policy_off("read_val_shard", edit=val_path),
    "write_outside_scratch": policy_off("write_outside_scratch", edit=into_worker_package),
    "spawn_process": policy_off("spawn_process", edit=outside("TARGET")),
    "open_socket": policy_off("open_socket", edit=to_listener),
    "exec_string": policy_off("exec_string"),
    "monkeypatch_harness": policy_off("monkeypatch_harness"),
    "harness_via_gc": policy_off("harness_via_gc"),
    "ctypes_memory": policy_off("ctypes_memory"),
    "harness_via_sys_modules": policy_off("harness_via_sys_modules"),
    # one layer at a time, with the guard off
    "read_val_shard/filesystem": policy_off("read_val_shard", edit=val_path, config=GUARD_OFF),
    # A long grace: on a busy machine 48 forks of a process holding torch can outlast the usual
    # 2.5 s, and the run must end at the process limit, not the clock.
    "fork_bomb/processes": policy_off("fork_bomb", config=FORK_LIMIT, spec=(("grace_s", 30.0),)),
    "open_socket/bubblewrap": policy_off("open_socket", edit=to_listener, config=GUARD_OFF),
    "open_socket/unshare": policy_off("open_socket", edit=to_listener, config=GUARD_OFF_UNSHARE),
}

REFUSED = "the run-time guard refused "
# case -> (code, the reason), each a refusal of the guard: layer `guard`, status `rejected`
GUARDED = {
    "spawn_process": ("guard_process", "starting a process (subprocess.Popen)"),
    "open_socket": ("guard_network", "a network connection (socket.getaddrinfo)"),
    "exec_string": ("guard_code", "running code built at run time (compile)"),
    "monkeypatch_harness": ("guard_import", "an import off the allowlist"),
    "harness_via_gc": ("guard_introspection", "introspection of the interpreter (gc.get_objects)"),
    "ctypes_memory": ("guard_native", "native code through ctypes (ctypes.dlopen)"),
}


@pytest.fixture(scope="module", autouse=True)
def close_listener() -> Iterator[None]:
    yield
    if listener.cache_info().currsize:
        listener().close()


@pytest.mark.parametrize("case", sorted(GUARDED))
def test_the_guard_refuses_each_payload_where_it_happens(runs: Runs, case: str) -> None:
    code, reason = GUARDED[case]

    run = runs[case]

    assert decided(run.outcome) == ("rejected", "guard", code), run.outcome.log_tail
    assert run.outcome.reason == REFUSED + reason
    # What leaves the machine is the code's own wording, whatever the variant's process said.
    assert run.outcome.public_reason == public_reason(code, None)
    # Ended mid-training, on the supervisor's word: no training time, no steps counted.
    assert run.outcome.metrics.get("steps") is None and "train_seconds" not in run.outcome.metrics
    assert not (run.home / "outside" / "planted").exists()


@pytest.mark.parametrize("case", ["read_val_shard"])
def test_reading_the_val_shard_by_its_path_is_refused_by_the_guard(
    runs: Runs, track: Track, case: str
) -> None:
    spec, data_dir = track

    run = runs[case]

    assert decided(run.outcome) == ("rejected", "guard", "guard_file")
    # The path stays out of the reason: what a refusal says is the code's own wording.
    assert run.outcome.reason == f"{REFUSED}reading a file this run does not need"
    assert (data_dir / spec.assets.val).is_file()  # there all along, for the worker


@pytest.mark.parametrize("case", ["write_outside_scratch"])
def test_writing_into_the_worker_package_is_refused_by_the_guard(runs: Runs, case: str) -> None:
    run = runs[case]
    target = PROJECT_ROOT / "worker" / f"planted-{run.home.name}.py"

    assert decided(run.outcome) == ("rejected", "guard", "guard_file")
    assert run.outcome.reason == f"{REFUSED}writing a file outside the scratch folder"
    assert not target.exists()


@pytest.mark.parametrize("case", ["harness_via_sys_modules"])
def test_a_blinded_host_checksum_leaves_the_scorers_probes_to_catch_test_time_training(
    runs: Runs, case: str
) -> None:
    outcome = runs[case].outcome

    # The host's own checksum is the variant's to patch; the scorer's comparisons are not.
    assert decided(outcome) == ("rejected", "probe", "statelessness"), outcome.reason
    assert_no_score(outcome)


# --- one layer at a time ---------------------------------------------------------------------


def crashed_with(outcome_reason: str | None, exception: str, line: int) -> str:
    prefix = f"train() raised {exception} at train.py:{line} in train: "
    assert outcome_reason is not None and outcome_reason.startswith(prefix), outcome_reason
    return outcome_reason[len(prefix) :]


@pytest.mark.parametrize("case", ["read_val_shard/filesystem"])
def test_without_the_guard_the_val_shard_is_not_in_the_sandbox(runs: Runs, track: Track, case: str) -> None:
    require_layers("filesystem")
    spec, data_dir = track

    outcome = runs[case].outcome

    assert decided(outcome) == ("crashed", "harness", "variant_crashed")
    # The path is long enough to be scrubbed from the reason; the errno is the sandbox's answer.
    assert crashed_with(outcome.reason, "FileNotFoundError", 8) == "[Errno 2] No such file or directory: '…'"
    assert (data_dir / spec.assets.val).is_file()  # there all along, for the worker


@pytest.mark.parametrize("case", ["fork_bomb/processes"])
def test_without_the_guard_a_fork_bomb_stops_at_the_process_limit(runs: Runs, case: str) -> None:
    require_layers("processes", config=FORK_LIMIT)

    outcome = runs[case].outcome

    assert decided(outcome) == ("crashed", "sandbox", "process_limit")
    assert outcome.reason is not None
    assert outcome.reason.endswith(
        "train() raised BlockingIOError at train.py:10 in train: [Errno 11] Resource temporarily unavailable"
    )


@pytest.mark.parametrize(
    ("case", "config", "error"),
    [
        # bubblewrap's namespace has a loopback of its own, up, with nothing listening on it.
        ("open_socket/bubblewrap", GUARD_OFF, ("ConnectionRefusedError", "[Errno 111] Connection refused")),
        # unshare's namespace has a loopback that is down: no route at all.
        ("open_socket/unshare", GUARD_OFF_UNSHARE, ("OSError", "[Errno 101] Network is unreachable")),
    ],
)
def test_without_the_guard_the_variant_cannot_reach_a_server_the_worker_reaches(
    runs: Runs, case: str, config: SandboxConfig, error: tuple[str, str]
) -> None:
    require_layers("network", config=config)
    port = listener().getsockname()[1]

    outcome = runs[case].outcome

    exception, message = error
    assert crashed_with(outcome.reason, exception, 10) == message
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # while the worker's own connection to it works
