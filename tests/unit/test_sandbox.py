"""The sandbox for real: variants that skip the static policy (run through run_harness directly)
try the network, the val shard, files outside scratch, and the machine's limits.

Tests that need a layer this machine lacks (bubblewrap for the filesystem) skip with the reason,
unless ARN_REQUIRE_SERVICES=1 (CI), which makes them fail instead.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import worker.sandbox as sandbox_module
from shared.track_spec import TrackSpec
from tests.services import REQUIRED
from tests.trackfactory import UNIFORM_MODEL, build_track
from worker.runner import HarnessResult, run_harness
from worker.sandbox import (
    GIB,
    LAUNCHER,
    NOBODY,
    PROJECT_ROOT,
    Layer,
    Sandbox,
    SandboxConfig,
    SandboxReport,
    _add_base_mounts,
    _Mounts,
)


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("track"), time_budget_s=1.0, grace_s=1.0)


def sandbox_with(config: SandboxConfig, *layers: str) -> Sandbox:
    """The sandbox for `config` on this machine, after checking that `layers` are active here."""
    sandbox = Sandbox.detect(config, device="cpu")
    for name in layers:
        layer = sandbox.report.layer(name)
        if not layer.active:
            message = f"the sandbox's {name} layer is {layer.state} on this machine ({layer.detail})"
            if REQUIRED:
                pytest.fail(f"{message}; ARN_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
            pytest.skip(f"{message}; install bubblewrap (bwrap) to run this test")
    return sandbox


def run(tmp_path: Path, track: tuple[TrackSpec, Path], source: str, *, sandbox: Sandbox) -> HarnessResult:
    spec, data_dir = track
    train_py = tmp_path / "train.py"
    train_py.write_text(textwrap.dedent(source))
    return run_harness(
        train_py=train_py,
        spec=spec,
        data_dir=data_dir,
        seed=1,
        workdir=tmp_path / "work",
        device="cpu",
        threads=1,
        sandbox=sandbox,
    )


def raised(result: HarnessResult, kind: str = "RuntimeError") -> str:
    """What the variant put in the exception it raised from train()."""
    prefix = f"train() raised {kind}: "
    assert result.status == "crashed" and result.reason is not None, result
    assert result.reason.startswith(prefix), (result.reason, result.log_tail)
    return result.reason[len(prefix) :]


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
    import os

    VAL = {str(data_dir / spec.assets.val)!r}


    def train(ctx):
        try:
            open(VAL, "rb").close()
            seen = "readable"
        except OSError as exc:
            seen = exc.strerror
        raise RuntimeError(f"{{seen}} | {{sorted(os.listdir({str(data_dir)!r}))}}")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    mounted = sorted([*spec.assets.train, spec.assets.token_bytes])
    assert raised(result) == f"No such file or directory | {mounted}"
    assert (data_dir / spec.assets.val).exists()  # still there for the worker


def test_val_pipe_holds_nothing_while_the_variant_trains(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    source = """
    import os
    import sys


    def train(ctx):
        fd = int(sys.argv[sys.argv.index("--val-fd") + 1])
        os.set_blocking(fd, False)
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            raise RuntimeError("the val pipe is empty") from None
        raise RuntimeError(f"read {len(data)} bytes of val data")
    """
    result = run(tmp_path, track, source, sandbox=Sandbox.detect(SandboxConfig(), device="cpu"))

    assert raised(result) == "the val pipe is empty"


def test_an_honest_variant_is_scored_on_the_piped_val_shard_inside_the_sandbox(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    sandbox = sandbox_with(SandboxConfig(), "network", "filesystem")

    result = run(tmp_path, track, UNIFORM_MODEL, sandbox=sandbox)

    assert (result.status, result.reason, result.code) == ("ok", None, None), result.log_tail
    # Uniform logits over 256 one-byte tokens: exactly 8 bits per byte.
    assert result.metrics["val_bpb"] == pytest.approx(8.0, abs=1e-5)


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
        raise RuntimeError(json.dumps(outcome, sort_keys=True))
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    outcome = json.loads(raised(result))
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

    assert result.code == "file_too_large"
    assert result.reason == (
        "a file grew too large (the sandbox caps files at 1 MiB):"
        " train() raised OSError: [Errno 27] File too large"
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
        hoard = [torch.empty(1 << 30, dtype=torch.uint8) for _ in range(64)]
        raise RuntimeError(f"allocated {len(hoard)} GiB")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.status, result.code) == ("crashed", "out_of_memory")
    assert result.reason is not None
    assert result.reason.startswith(
        "out of memory (the sandbox caps memory at 4 GiB): train() raised RuntimeError: "
    )
    assert "allocate 1073741824 bytes" in result.reason


def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path, track: tuple[TrackSpec, Path]) -> None:
    sandbox = sandbox_with(SandboxConfig(process_allowance=48), "processes")
    source = """
    import subprocess


    def train(ctx):
        children = [subprocess.Popen(["sleep", "30"]) for _ in range(500)]
        raise RuntimeError(f"started {len(children)} processes")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.status, result.code) == ("crashed", "process_limit")
    assert result.reason == (
        "the sandbox's process limit was reached (at most 48 more processes and threads for its uid"
        " (RLIMIT_NPROC)): train() raised BlockingIOError: [Errno 11] Resource temporarily unavailable"
    )


def test_the_variant_runs_unprivileged_and_sees_only_its_own_processes(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    source = """
    import os


    def train(ctx):
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
        raise RuntimeError(f"uid={os.getuid()} caps={status['CapEff'].strip()} pids={pids}")
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    uid = NOBODY if os.geteuid() == 0 else os.getuid()
    # pid 1 is bubblewrap's reaper, pid 2 the harness: no process of the host is visible.
    assert raised(result) == f"uid={uid} caps=0000000000000000 pids=[1, 2]"


LEAVE_THE_SESSION = 'subprocess.Popen(["sleep", "{marker}"], start_new_session=True)'
# The shell exits at once, so the sleeper is re-parented away from the harness before the kill.
DAEMONIZE = 'subprocess.Popen(["sh", "-c", "sleep {marker} &"]).wait()'


@pytest.mark.parametrize(
    ("config", "layer", "escape"),
    [
        (SandboxConfig(), "filesystem", LEAVE_THE_SESSION),
        (SandboxConfig(), "filesystem", DAEMONIZE),
        (SandboxConfig(filesystem=False), "network", LEAVE_THE_SESSION),
        (SandboxConfig(filesystem=False), "network", DAEMONIZE),
        # No namespace at all: the runner still finds the process among the harness's descendants.
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
    ]  # fmt: skip
    assert {layer.state for layer in report.layers} <= {"active", "unavailable", "skipped", "off"}


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
        "network", "filesystem", "memory", "processes", "files",
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


def test_a_harness_killed_inside_bubblewrap_is_named_by_its_signal(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    source = """
    import os
    import signal


    def train(ctx):
        os.kill(os.getpid(), signal.SIGKILL)
    """
    result = run(tmp_path, track, source, sandbox=sandbox)

    assert (result.code, result.reason) == ("killed_by_signal", "harness was killed by signal SIGKILL")


def test_missing_train_data_is_the_harness_setup_error_not_a_sandbox_failure(
    tmp_path: Path, track: tuple[TrackSpec, Path]
) -> None:
    spec, _ = track
    sandbox = sandbox_with(SandboxConfig(), "filesystem")
    (tmp_path / "empty").mkdir()
    train_py = tmp_path / "train.py"
    train_py.write_text(UNIFORM_MODEL)

    result = run_harness(
        train_py=train_py, spec=spec, data_dir=tmp_path / "empty", seed=1, workdir=tmp_path / "work",
        device="cpu", sandbox=sandbox,
    )  # fmt: skip

    assert result.code == "harness_setup_failed"
    assert result.reason is not None
    assert result.reason.startswith(
        "harness exited with code 2 and wrote no result: harness: error: cannot read"
    )
