"""The sandbox for real: variants that skip the static policy, and run without the run-time guard
(which would refuse them first), try the network, the val shard, files outside scratch, and the
machine's limits. What each test shows is what the sandbox alone holds.

Tests that need a layer this machine lacks (bubblewrap for the filesystem) skip with the reason,
unless ARN_REQUIRE_SERVICES=1 (CI), which makes them fail instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import worker.execution.sandbox as sandbox_module
from shared.track_spec import TrackSpec
from tests.services import REQUIRED
from tests.trackfactory import UNIFORM_MODEL, build_track
from worker.execution import Executor, Outcome, RunRequest
from worker.execution.sandbox import (
    GIB,
    LAUNCHER,
    NOBODY,
    PROJECT_ROOT,
    Layer,
    Sandbox,
    SandboxConfig,
    SandboxReport,
    _add_base_mounts,
    _cuda_toolchain,
    _Mounts,
)


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=1.0, grace_s=1.0)


def require_active(sandbox: Sandbox, name: str) -> None:
    """Skip (fail under ARN_REQUIRE_SERVICES=1) when the layer `name` is not active on this machine."""
    layer = sandbox.report.layer(name)
    if not layer.active:
        message = f"the sandbox's {name} layer is {layer.state} on this machine ({layer.detail})"
        if REQUIRED:
            pytest.fail(f"{message}; ARN_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
        pytest.skip(f"{message}; install bubblewrap (bwrap) to run this test")


def sandbox_with(config: SandboxConfig, *layers: str) -> Sandbox:
    """The sandbox for `config`, without the guard, after checking that `layers` are active here."""
    sandbox = Sandbox.detect(dataclasses.replace(config, guard=False), device="cpu")
    for name in layers:
        require_active(sandbox, name)
    return sandbox


def run(
    tmp_path: Path,
    track: tuple[TrackSpec, Path],
    source: str,
    *,
    sandbox: Sandbox,
    data_dir: Path | None = None,
    enforce_policy: bool = False,
) -> Outcome:
    spec, track_data = track
    request = RunRequest(
        source=textwrap.dedent(source), spec=spec, data_dir=data_dir or track_data, seed=1, workdir=tmp_path / "work"
    )
    executor = Executor(sandbox=sandbox, device="cpu", threads=1)
    return executor.run(request, enforce_policy=enforce_policy)


def observed(tmp_path: Path) -> Any:
    """What the variant wrote to observed.json in its scratch folder (a crash reason is scrubbed)."""
    return json.loads((tmp_path / "work" / "observed.json").read_text())


def raised(outcome: Outcome, kind: str = "RuntimeError") -> str:
    """The scrubbed message of the exception the variant raised from train()."""
    prefix = f"train() raised {kind} at train.py:"
    assert outcome.status == "crashed" and outcome.reason is not None, outcome
    assert outcome.reason.startswith(prefix), (outcome.reason, outcome.log_tail)
    return outcome.reason.split(": ", 1)[1]


# --- network ------------------------------------------------------------------------------------


@pytest.fixture
def local_server() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on 127.0.0.1 that greets and records each connection it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[str] = []

    def serve() -> None:
        while True:
            try:
                connection, peer = server.accept()
            except OSError:
                return  # closed
            with connection:
                accepted.append(f"{peer[0]}")
                connection.sendall(b"hello\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()
        thread.join(timeout=5)


def greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        return connection.recv(64)


@pytest.mark.parametrize(
    ("config", "blocked_by"),
    [
        # bubblewrap's namespace has its own loopback, up, with nothing listening on it.
        (SandboxConfig(), "ConnectionRefusedError"),
        # unshare's namespace has a loopback that is down: no route at all.
        (SandboxConfig(filesystem=False), "OSError"),
    ],
    ids=["bubblewrap", "unshare"],
)
def test_variant_cannot_reach_a_local_server_that_the_worker_reaches(
    tmp_path: Path,
    track: tuple[TrackSpec, Path],
    local_server: tuple[int, list[str]],
    config: SandboxConfig,
    blocked_by: str,
) -> None:
    port, accepted = local_server
    sandbox = sandbox_with(config, "network")
    source = f"""
    import socket


    def train(ctx):
        try:
            with socket.create_connection(("127.0.0.1", {port}), timeout=5) as connection:
                got = connection.recv(64)
        except OSError as exc:
            raise RuntimeError(f"blocked by {{type(exc).__name__}}") from exc
        raise RuntimeError(f"reached the server: {{got!r}}")
    """
    assert greeting(port) == b"hello\n"

    result = run(tmp_path, track, source, sandbox=sandbox)

    assert raised(result) == f"blocked by {blocked_by}"
    assert greeting(port) == b"hello\n"
    assert accepted == ["127.0.0.1", "127.0.0.1"]  # the test's two connections, none from the variant


# --- the val shard ------------------------------------------------------------------------------


def test_val_shard_is_absent_and_only_the_train_data_is_mounted(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, data_dir = track
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    source = f"""
    import json
    import os

    VAL = {str(data_dir / spec.assets.val)!r}


    def train(ctx):
        try:
            open(VAL, "rb").close()
            seen = "readable"
        except OSError as exc:
            seen = exc.strerror
        with open("observed.json", "w") as handle:
            json.dump({{"val": seen, "data": sorted(os.listdir({str(data_dir)!r}))}}, handle)
        raise RuntimeError("observed")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert raised(result) == "observed"
    mounted = sorted([*spec.assets.train, spec.assets.token_bytes])
    assert observed(tmp_path) == {"val": "No such file or directory", "data": mounted}
    assert (data_dir / spec.assets.val).exists()  # still there for the worker


def test_no_descriptor_of_the_variants_process_yields_val_bytes_while_it_trains(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, _ = track
    source = """
    import json
    import os


    def train(ctx):
        found = {}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue  # the fd listdir itself used, closed by now
            if not target.startswith("pipe:"):
                found[name] = [target, None]
                continue
            os.set_blocking(fd, False)
            try:
                found[name] = [target, len(os.read(fd, 1 << 20))]
            except BlockingIOError:
                found[name] = [target, "empty"]
            except OSError as exc:
                found[name] = [target, exc.strerror]  # a write end
        with open("observed.json", "w") as handle:
            json.dump(found, handle)
        raise RuntimeError("observed")
    """
    result = run(tmp_path, track, source, sandbox=sandbox_with(SandboxConfig()))

    assert raised(result) == "observed"
    descriptors = observed(tmp_path)
    pipes = [answer for target, answer in descriptors.values() if target.startswith("pipe:")]
    # Events (to the supervisor), requests and answers (with the scorer), and the model's copy on
    # its way to the scorer when train() returns.
    assert len(pipes) == 4
    assert sorted(map(str, pipes)) == ["Bad file descriptor", "Bad file descriptor", "Bad file descriptor", "empty"]
    assert not any(spec.assets.val in target for target, _ in descriptors.values())


def test_an_honest_variant_is_scored_on_the_piped_val_shard_inside_the_sandbox_and_guard(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    sandbox = Sandbox.detect(SandboxConfig(), device="cpu")
    for name in ("network", "filesystem", "audit hook", "seccomp"):
        require_active(sandbox, name)

    result = run(tmp_path, track, UNIFORM_MODEL, sandbox=sandbox, enforce_policy=True)

    assert (result.status, result.reason, result.code) == ("ok", None, None), result.log_tail
    # Uniform logits over 256 one-byte tokens: exactly 8 bits per byte.
    assert result.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-6)


# --- files --------------------------------------------------------------------------------------


def test_writing_outside_the_scratch_folder_fails_under_bubblewrap(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, data_dir = track
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    (tmp_path / "outside").mkdir()
    targets = {
        "scratch": "inside.txt",
        "project": str(PROJECT_ROOT / "worker" / f"planted-{random.randrange(10**9)}.py"),
        "system": "/etc/planted.conf",
        "train shard": str(data_dir / spec.assets.train[0]),
        "host folder": str(tmp_path / "outside" / "planted.txt"),
    }
    source = f"""
    import json

    TARGETS = {targets!r}


    def train(ctx):
        outcome = {{}}
        for name, path in TARGETS.items():
            try:
                with open(path, "a") as handle:
                    handle.write("planted")
                outcome[name] = "written"
            except OSError as exc:
                outcome[name] = exc.strerror
        with open("observed.json", "w") as handle:
            json.dump(outcome, handle)
        raise RuntimeError("observed")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert raised(result) == "observed"
    outcome = observed(tmp_path)
    # An existing file is refused by its permissions first when the variant's uid does not own it.
    assert outcome.pop("train shard") in ("Read-only file system", "Permission denied")
    assert outcome == {
        "scratch": "written",
        "project": "Read-only file system",
        "system": "Read-only file system",
        "host folder": "No such file or directory",
    }
    assert (tmp_path / "work" / "inside.txt").read_text() == "planted"
    assert not Path(targets["project"]).exists()
    assert not (tmp_path / "outside" / "planted.txt").exists()
    assert b"planted" not in (data_dir / spec.assets.train[0]).read_bytes()[-64:]


def test_a_file_over_the_size_limit_fails_with_a_clear_reason(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    sandbox = sandbox_with(SandboxConfig(file_bytes=1 << 20), "files")
    source = """
    def train(ctx):
        with open("big.bin", "wb") as handle:
            for _ in range(4):
                handle.write(bytes(1 << 20))
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.layer, result.code) == ("sandbox", "file_too_large")
    assert result.reason == (
        "a file grew too large (the sandbox caps files at 1 MiB):"
        " train() raised OSError at train.py:5 in train: [Errno 27] File too large"
    )
    assert (tmp_path / "work" / "big.bin").stat().st_size == 1 << 20


# --- memory, processes, privileges --------------------------------------------------------------


def test_a_memory_bomb_stops_at_the_address_space_limit_with_out_of_memory(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    sandbox = sandbox_with(SandboxConfig(memory_bytes=4 * GIB), "memory")
    # Never touched, so the pages cost nothing: only the address-space limit can stop this.
    source = """
    import torch


    def train(ctx):
        hoard = []
        for _ in range(64):
            hoard.append(torch.empty(1 << 30, dtype=torch.uint8))
        raise RuntimeError(f"allocated {len(hoard)} GiB")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.status, result.layer, result.code) == ("crashed", "sandbox", "out_of_memory")
    assert result.reason is not None
    assert result.reason.startswith(
        "out of memory (the sandbox caps memory at 4 GiB): train() raised RuntimeError at train.py:8 in train: "
    )
    assert "allocate 1073741824 bytes" in result.log_tail


def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    sandbox = sandbox_with(SandboxConfig(process_allowance=48), "processes")
    source = """
    import subprocess


    def train(ctx):
        children = [subprocess.Popen(["sleep", "30"]) for _ in range(500)]
        raise RuntimeError(f"started {len(children)} processes")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.status, result.layer, result.code) == ("crashed", "sandbox", "process_limit")
    assert result.reason is not None
    assert result.reason.startswith(
        "the sandbox's process limit was reached (at most 48 more processes and threads for its uid"
        " (RLIMIT_NPROC)): train() raised BlockingIOError at train.py:"
    )
    assert result.reason.endswith(": [Errno 11] Resource temporarily unavailable")


def test_the_variant_runs_unprivileged_and_sees_only_the_runs_own_processes(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    source = """
    import json
    import os


    def train(ctx):
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
        seen = {"uid": os.getuid(), "caps": status["CapEff"].strip(), "pids": pids, "me": os.getpid()}
        with open("observed.json", "w") as handle:
            json.dump(seen, handle)
        raise RuntimeError("observed")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert raised(result) == "observed"
    uid = NOBODY if os.geteuid() == 0 else os.getuid()
    # pid 1 is bubblewrap's reaper, pid 2 the scorer, pid 3 the variant's host and pid 4 its
    # replica: nothing of the machine.
    assert observed(tmp_path) == {"uid": uid, "caps": "0000000000000000", "pids": [1, 2, 3, 4], "me": 3}


LEAVE_THE_SESSION = 'subprocess.Popen(["sleep", "{marker}"], start_new_session=True)'
# The shell exits at once, so the sleeper is re-parented away from the run before the kill.
DAEMONIZE = 'subprocess.Popen(["sh", "-c", "sleep {marker} &"]).wait()'


@pytest.mark.parametrize(
    ("config", "layer", "escape"),
    [
        (SandboxConfig(), "filesystem", LEAVE_THE_SESSION),
        (SandboxConfig(), "filesystem", DAEMONIZE),
        (SandboxConfig(filesystem=False), "network", LEAVE_THE_SESSION),
        (SandboxConfig(filesystem=False), "network", DAEMONIZE),
        # No namespace at all: the supervisor still finds the process among the run's descendants.
        (SandboxConfig.off(), "environment", LEAVE_THE_SESSION),
    ],
    ids=["bubblewrap-setsid", "bubblewrap-daemon", "unshare-setsid", "unshare-daemon", "off-setsid"],
)
def test_a_process_that_leaves_the_session_dies_with_the_run(
    tmp_path: Path, track: tuple[TrackSpec, Path], config: SandboxConfig, layer: str, escape: str
) -> None:
    sandbox = sandbox_with(config, layer)
    marker = str(700_000 + random.randrange(100_000))
    source = f"""
    import subprocess
    import time


    def train(ctx):
        {escape.format(marker=marker)}
        time.sleep(600)
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.code, result.reason) == ("budget_exceeded", "exceeded time budget (1s + 1s grace)")
    assert sleepers(marker) == []


def sleepers(marker: str) -> list[int]:
    """Running (not zombie) `sleep <marker>` processes on this machine."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


# --- detection, report, mounts and the launcher -------------------------------------------------


def test_the_report_names_every_layer_once() -> None:
    report = Sandbox.detect(SandboxConfig(), device="cpu").report

    assert [layer.name for layer in report.layers] == [
        "network", "filesystem", "environment", "process group", "privileges", "memory", "processes", "files",
        "audit hook", "seccomp",
    ]  # fmt: skip
    assert {layer.state for layer in report.layers} <= {"active", "unavailable", "skipped", "off"}


def test_both_guard_layers_are_active_here_and_the_run_is_told_to_install_them(tmp_path: Path) -> None:
    sandbox = Sandbox.detect(SandboxConfig(), device="cpu")
    for name in ("audit hook", "seccomp"):
        require_active(sandbox, name)

    assert sandbox.seccomp_active
    assert sandbox.report.layer("seccomp").detail == (
        "in the variant's process: no new processes or execve, no sockets, no ptrace or process_vm_*"
    )


@pytest.mark.parametrize(
    "config", [SandboxConfig(guard=False), SandboxConfig.off()], ids=["guard-false", "all-off"]
)
def test_the_guard_layers_are_off_when_the_guard_is_turned_off(config: SandboxConfig) -> None:
    report = Sandbox.detect(config, device="cpu").report

    assert [(report.layer(name).state, report.layer(name).detail) for name in ("audit hook", "seccomp")] == [
        ("off", "turned off"),
        ("off", "turned off"),
    ]


def test_memory_is_not_capped_for_cuda_runs() -> None:
    sandbox = Sandbox.detect(SandboxConfig(memory_bytes=4 * GIB), device="cuda")

    assert sandbox.memory_limit_bytes is None
    assert sandbox.report.layer("memory").state == "skipped"
    assert sandbox.report.layer("memory").detail.startswith("not capped on CUDA")


def test_a_sandbox_turned_off_leaves_the_command_as_it_is(tmp_path: Path) -> None:
    sandbox = Sandbox.detect(SandboxConfig.off(), device="cpu")

    command = sandbox.wrap(["python", "-c", "pass"], workdir=tmp_path, read_only=[], hidden=[])

    assert command == ["python", "-c", "pass"]
    assert {layer.name: layer.state for layer in sandbox.report.layers if layer.state == "off"}.keys() >= {
        "network", "filesystem", "memory", "processes", "files", "audit hook", "seccomp",
    }  # fmt: skip


def test_the_warning_block_lists_each_unavailable_layer_and_nothing_when_complete() -> None:
    complete = SandboxReport((Layer("network", "active", "bubblewrap"), Layer("memory", "skipped", "CUDA")))
    missing = SandboxReport(
        (
            Layer("network", "unavailable", "the variant can reach the network"),
            Layer("filesystem", "unavailable", "bubblewrap is not installed"),
            Layer("files", "active", "limits"),
        )
    )

    block = missing.warning_block()

    assert complete.warning_block() is None
    assert block is not None
    lines = block.splitlines()
    assert lines[1] == "WARNING: the sandbox for other people's code is INCOMPLETE on this machine."
    assert lines[2:4] == [
        "  network: the variant can reach the network",
        "  filesystem: bubblewrap is not installed",
    ]
    assert "  files:" not in block


def test_mount_parents_are_created_enterable_unless_a_bind_or_tmpfs_provides_them() -> None:
    mounts = _Mounts()
    mounts.bind(Path("/opt/tools"))
    mounts.tmpfs(Path("/opt/tools/data"))
    mounts.bind(Path("/opt/tools/data/shards/a.npy"))
    mounts.bind(Path("/opt/tools/lib/x.so"))

    assert mounts.args == [
        "--perms", "0755", "--dir", "/opt",
        "--ro-bind", "/opt/tools", "/opt/tools",
        "--perms", "0755", "--tmpfs", "/opt/tools/data",
        "--perms", "0755", "--dir", "/opt/tools/data/shards",
        "--ro-bind", "/opt/tools/data/shards/a.npy", "/opt/tools/data/shards/a.npy",
        "--ro-bind", "/opt/tools/lib/x.so", "/opt/tools/lib/x.so",
    ]  # fmt: skip


def test_a_python_installed_under_tmp_is_bound_over_the_in_memory_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    venv = Path("/tmp/checkout/.venv")
    monkeypatch.setattr(sandbox_module, "_python_folders", lambda: [venv])
    mounts = _Mounts()

    _add_base_mounts(mounts, uses_gpu=False, tmp_bytes=GIB)

    args = mounts.args
    tmp_at = args.index("/tmp")
    assert args[tmp_at - 1] == "--tmpfs"
    # Later mounts win: bound before the tmpfs, the interpreter would be hidden by it.
    assert args[-7:] == ["--perms", "0755", "--dir", "/tmp/checkout", "--ro-bind", str(venv), str(venv)]
    assert len(args) - 7 > tmp_at


def launch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-S", str(LAUNCHER), *args], capture_output=True, text=True)


def test_the_launcher_sets_soft_and_hard_limits_before_it_execs() -> None:
    script = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_CORE))"

    done = launch("--rlimit", "NOFILE=64", "--rlimit", "CORE=0", "--", sys.executable, "-c", script)

    assert (done.returncode, done.stdout, done.stderr) == (0, "(64, 64) (0, 0)\n", "")


def test_the_launcher_refuses_an_unknown_limit_in_one_line() -> None:
    done = launch("--rlimit", "BOGUS=1", "--", sys.executable, "-c", "pass")

    assert (done.returncode, done.stderr) == (
        126,
        "sandbox: error: module 'resource' has no attribute 'RLIMIT_BOGUS'\n",
    )


def test_the_default_memory_cap_is_a_fraction_of_ram() -> None:
    sandbox = Sandbox.detect(SandboxConfig(memory_fraction=0.5), device="cpu")
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

    assert sandbox.memory_limit_bytes == math.floor(ram * 0.5)


def test_a_run_killed_inside_bubblewrap_is_named_by_its_signal(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    # The variant's parent is the scorer, the process bubblewrap runs and relays the status of.
    source = """
    import os
    import signal
    import time


    def train(ctx):
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(600)
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.layer, result.code, result.reason) == (
        "harness",
        "killed_by_signal",
        "the run was killed by signal SIGKILL",
    )


def test_missing_train_data_is_a_setup_failure_not_a_sandbox_failure(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, data_dir = track
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    partial = tmp_path / "partial"  # the byte table, no train shards
    partial.mkdir()
    (partial / spec.assets.token_bytes).write_bytes((data_dir / spec.assets.token_bytes).read_bytes())

    result = run(tmp_path, track, UNIFORM_MODEL, sandbox=sandbox, data_dir=partial)

    assert (result.layer, result.code) == ("harness", "harness_setup_failed")
    assert result.reason is not None
    assert result.reason.startswith("the run could not start: cannot read the track's train shards: ")


def test_the_cuda_toolchain_names_each_program_once_by_the_path_exec_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A compiler reached through a link, first on the PATH: the guard compares resolved paths.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "cc").symlink_to(shutil.which("true") or "/bin/true")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")

    toolchain = _cuda_toolchain()

    assert len(set(toolchain)) == len(toolchain)
    assert all(path == path.resolve() and os.access(path, os.X_OK) for path in toolchain)
    assert Path(shutil.which("true") or "/bin/true").resolve() in toolchain
    assert (tmp_path / "bin" / "cc") not in toolchain  # the link itself is never what runs
    for program in ("ldconfig", "file"):
        if shutil.which(program):
            assert Path(shutil.which(program) or "").resolve() in toolchain
