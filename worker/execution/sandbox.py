"""The sandbox around a run (trust layer 3): what this machine can enforce, and how.

Each layer is detected once per process and reported (`Sandbox.report`); where one is missing the
worker says so and runs with the rest. `Sandbox.wrap` turns the scorer's command (the scorer
starts the variant's host process inside the same sandbox) into the command that applies the
active layers:

    [bwrap <namespaces> <mounts> --]  python -I -S launcher.py --rlimit ... [--uid U --gid G] --  scorer...
    (or [unshare --net --pid --fork ... --] when bubblewrap is missing)

- network: a new network namespace holding only its own loopback (bubblewrap, else `unshare`),
  with a PID namespace of its own too, so nothing the variant starts outlives the run.
- filesystem (bubblewrap only): the system, the Python installation and this project's `worker`
  and `shared` packages read-only; an in-memory /tmp; the scratch workdir writable; the train
  shards and token-byte table bound read-only one by one over an empty data folder. The val shard
  is never mounted: the supervisor pipes it to the scorer after `train()` returns, and the
  variant's process never holds it. A new PID namespace, so the variant sees no process of the
  host (their /proc entries would lead back to the host's files).
- limits: RLIMIT_AS (CPU runs only: CUDA reserves huge virtual ranges), RLIMIT_NPROC, RLIMIT_NOFILE,
  RLIMIT_FSIZE and RLIMIT_CORE=0, set by the launcher just before it execs the scorer, so no code
  runs in a forked child of this (threaded) process.
- privileges: a worker running as root runs the run as an unprivileged uid (nobody), because
  root ignores RLIMIT_NPROC and can read every file. Done inside bubblewrap, which mounts as root
  so that the Python installation stays reachable even when it lives under a private /root.

Standard library only: the supervisor imports this on a bare GPU box.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

# The folder holding the `worker` and `shared` packages.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
NOBODY = 65534
GIB = 1 << 30
PROBE_TIMEOUT_S = 20.0
# System folders the interpreter and its libraries load from; mirrored as symlinks where the host
# has symlinks (merged /usr), bound read-only otherwise.
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

LayerState = Literal["active", "unavailable", "skipped", "off"]


@dataclass(frozen=True)
class SandboxConfig:
    """What the worker asks for. Each layer is used where this machine supports it."""

    network: bool = True  # no network inside (a network namespace)
    filesystem: bool = True  # bubblewrap mounts: read-only system, writable scratch, no val shard
    limits: bool = True  # the rlimits below
    drop_privileges: bool = True  # when the worker is root, run the harness as `uid`:`gid`
    memory_bytes: int | None = None  # RLIMIT_AS; None: memory_fraction of RAM (CPU runs only)
    memory_fraction: float = 0.8
    process_allowance: int | None = None  # tasks the run may add; None: max(1024, 32 per CPU)
    open_files: int = 4096
    file_bytes: int = 2 * GIB  # the largest file the run may write (its log included)
    tmp_bytes: int = 1 * GIB  # size of each in-memory folder (/tmp, /dev/shm)
    uid: int = NOBODY
    gid: int = NOBODY
    guard: bool = True  # the run-time guard in the variant's process: audit hook and seccomp

    @classmethod
    def off(cls) -> SandboxConfig:
        """Every optional layer off: the run goes as the worker does, in its own process group."""
        return cls(network=False, filesystem=False, limits=False, drop_privileges=False, guard=False)


@dataclass(frozen=True)
class Layer:
    name: str
    state: LayerState  # "skipped": deliberately not applied here (e.g. the memory cap on CUDA)
    detail: str  # how it is enforced, or why it is not

    @property
    def active(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True)
class SandboxReport:
    layers: tuple[Layer, ...]

    @property
    def unavailable(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.state == "unavailable")

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def lines(self) -> list[str]:
        width = max(len(layer.name) for layer in self.layers)
        return [f"{layer.name:<{width}}  {layer.state:<11}  {layer.detail}" for layer in self.layers]

    def warning_block(self) -> str | None:
        """A block a volunteer cannot miss, naming each missing layer; None when nothing is missing."""
        missing = self.unavailable
        if not missing:
            return None
        rule = "!" * 78
        body = [f"  {layer.name}: {layer.detail}" for layer in missing]
        return "\n".join(
            [
                rule,
                "WARNING: the sandbox for other people's code is INCOMPLETE on this machine.",
                *body,
                "The worker runs with the other layers. `worker doctor` lists them all; most missing",
                "layers come with bubblewrap (see worker/SANDBOX.md in the project).",
                rule,
            ]
        )

    def to_json(self) -> dict[str, Any]:
        return {"layers": [asdict(layer) for layer in self.layers]}


@dataclass(frozen=True)
class _Mode:
    """How the layers are applied on this machine (the result of detection)."""

    wrapper: Literal["bwrap", "unshare", "none"]
    isolate_network: bool
    drop_to: tuple[int, int] | None  # (uid, gid) the launcher switches to, inside bubblewrap
    memory_bytes: int | None
    uses_gpu: bool
    limits: bool
    seccomp: bool  # the guard's filter loads on this machine
    toolchain: tuple[Path, ...]  # programs the guard lets libraries run (CUDA: ptxas, the C compiler)
    report: SandboxReport = field(compare=False)


class Sandbox:
    """A SandboxConfig made concrete on this machine: its report, and the command that applies it."""

    def __init__(self, config: SandboxConfig, mode: _Mode) -> None:
        self.config = config
        self._mode = mode

    @classmethod
    def detect(cls, config: SandboxConfig | None = None, *, device: str = "auto") -> Sandbox:
        """Probe what this machine supports (cached per process) for runs on `device`."""
        config = config or SandboxConfig()
        return cls(config, _detect(config, uses_gpu=_uses_gpu(device)))

    @property
    def report(self) -> SandboxReport:
        return self._mode.report

    @property
    def memory_limit_bytes(self) -> int | None:
        return self._mode.memory_bytes

    @property
    def seccomp_active(self) -> bool:
        return self._mode.seccomp

    @property
    def toolchain(self) -> tuple[Path, ...]:
        return self._mode.toolchain

    def prepare_workdir(self, workdir: Path) -> None:
        """Let the unprivileged uid write the scratch folder (and nothing else of ours).

        Mode 0711: bubblewrap enters the folder as root without its capabilities, before the
        switch, so the world needs the right to pass through (not to list or read).
        """
        if self._mode.drop_to is not None:
            os.chown(workdir, *self._mode.drop_to)
            os.chmod(workdir, 0o711)

    def wrap(
        self, command: Sequence[str], *, workdir: Path, read_only: Iterable[Path], hidden: Iterable[Path]
    ) -> list[str]:
        """The command that runs `command` inside the sandbox.

        `read_only` files are visible (read-only) at their paths; `hidden` folders appear empty,
        apart from any `read_only` file inside them. Both matter only under bubblewrap.
        """
        mode = self._mode
        inner = list(command)
        if mode.limits or mode.drop_to is not None:
            inner = [*self._launcher_args(), "--", *inner]
        if mode.wrapper == "bwrap":
            mounts = _Mounts()
            _add_base_mounts(mounts, uses_gpu=mode.uses_gpu, tmp_bytes=self.config.tmp_bytes)
            mounts.bind(workdir.resolve(), writable=True)
            for folder in hidden:
                mounts.tmpfs(folder.resolve())
            for path in read_only:
                # A missing data file is the harness's to report ("cannot read the track's data").
                mounts.bind(path.resolve(), optional=True)
            return [*_bwrap_namespaces(mode), *mounts.args, "--chdir", str(workdir.resolve()), "--", *inner]
        if mode.wrapper == "unshare":
            return [*_unshare_prefix(), *inner]
        return inner

    def _launcher_args(self) -> list[str]:
        mode, config = self._mode, self.config
        args = [sys.executable, "-I", "-S", str(LAUNCHER)]
        if mode.limits:
            uid = mode.drop_to[0] if mode.drop_to is not None else os.getuid()
            limits = {
                "NPROC": _tasks_of(uid) + _process_allowance(config),
                "NOFILE": config.open_files,
                "FSIZE": config.file_bytes,
                "CORE": 0,
            }
            if mode.memory_bytes is not None:
                limits["AS"] = mode.memory_bytes
            args += [arg for name, value in limits.items() for arg in ("--rlimit", f"{name}={value}")]
        if mode.drop_to is not None:
            args += ["--uid", str(mode.drop_to[0]), "--gid", str(mode.drop_to[1])]
        return args


def detect_report(config: SandboxConfig | None = None, *, device: str = "auto") -> SandboxReport:
    return Sandbox.detect(config, device=device).report


def human_bytes(count: int) -> str:
    """`4 GiB`, `18.8 GiB`, `1 MiB`: one decimal at most, none when it is zero."""
    for unit, name in ((GIB, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if count >= unit:
            return f"{count / unit:.1f}".removesuffix(".0") + f" {name}"
    return f"{count} bytes"


# --- detection ------------------------------------------------------------------------------------


def _detect(config: SandboxConfig, *, uses_gpu: bool) -> _Mode:
    is_root = os.geteuid() == 0
    want_drop = config.drop_privileges and is_root
    drop_to = (config.uid, config.gid) if want_drop else None
    bwrap_problem = _bwrap_problem(drop_to) if config.filesystem else "turned off"
    wrapper: Literal["bwrap", "unshare", "none"] = "none"
    if bwrap_problem is None:
        wrapper = "bwrap"
    elif config.network and _unshare_problem() is None:
        wrapper = "unshare"
    dropping = wrapper == "bwrap" and want_drop
    memory = _memory_limit(config) if config.limits and not uses_gpu else None

    layers = [
        _network_layer(config, wrapper, bwrap_problem),
        _filesystem_layer(config, wrapper, bwrap_problem),
        Layer(
            "environment",
            "active",
            "scrubbed: no credentials, proxies or tokens; HOME and TMPDIR are the scratch folder",
        ),
        Layer(
            "process group",
            "active",
            "own session; every process of the run is killed at budget + grace"
            + ("; own PID namespace, so nothing outlives the run" if wrapper != "none" else ""),
        ),
        _privileges_layer(config, is_root=is_root, dropping=dropping, bwrap_problem=bwrap_problem),
        _memory_layer(config, memory, uses_gpu=uses_gpu),
        _processes_layer(config, is_root=is_root, dropping=dropping),
        _files_layer(config),
    ]
    toolchain = _cuda_toolchain() if uses_gpu else ()
    guard_layers = _guard_layers(config, toolchain=toolchain)
    layers += guard_layers
    return _Mode(
        wrapper=wrapper,
        isolate_network=config.network,
        drop_to=drop_to if dropping else None,
        memory_bytes=memory,
        uses_gpu=uses_gpu,
        limits=config.limits,
        seccomp=guard_layers[1].active,
        toolchain=toolchain,
        report=SandboxReport(tuple(layers)),
    )


def _guard_layers(config: SandboxConfig, *, toolchain: tuple[Path, ...]) -> list[Layer]:
    if not config.guard:
        return [Layer("audit hook", "off", "turned off"), Layer("seccomp", "off", "turned off")]
    hook, seccomp = _guard_self_test()
    hook_layer = (
        Layer(
            "audit hook",
            "active",
            "in the variant's process: no processes, sockets or ctypes; files only in scratch (writes)"
            " and on the run's paths (reads); no exec/compile, off-allowlist imports or frame and gc"
            " introspection from train.py",
        )
        if hook == "active"
        else Layer("audit hook", "unavailable", hook.removeprefix("unavailable: "))
    )
    if seccomp != "active":
        return [hook_layer, Layer("seccomp", "unavailable", seccomp.removeprefix("unavailable: "))]
    detail = "in the variant's process: no new processes or execve, no sockets, no ptrace or process_vm_*"
    if toolchain:
        detail = (
            "in the variant's process: no sockets, no ptrace or process_vm_*; processes stay allowed on"
            " CUDA, where Triton runs "
            + ", ".join(p.name for p in toolchain)
            + " (the audit hook allows only those)"
        )
    return [hook_layer, Layer("seccomp", "active", detail)]


@functools.cache
def _guard_self_test() -> tuple[str, str]:
    from worker.execution.guard import self_test

    return self_test()


def _cuda_toolchain() -> tuple[Path, ...]:
    """Programs Triton and Inductor start on CUDA: a ptxas (Triton's bundled one, or torch's, which
    torch builds for new GPUs point Triton at), the C compiler for kernel launchers, ldconfig, which
    Triton asks where libcuda lives, `file`, which `platform.architecture()` runs for Triton's cache
    key, and nvcc, whose version Inductor's error reports quote."""
    import importlib.util

    found: list[Path] = []
    for package, ptxas in (("triton", ("backends", "nvidia", "bin", "ptxas")), ("torch", ("bin", "ptxas"))):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            bundled = Path(spec.origin).parent.joinpath(*ptxas)
            if bundled.is_file():
                found.append(bundled.resolve())
    for name in (os.environ.get("CC"), "cc", "gcc", "clang", "ldconfig", "/sbin/ldconfig", "file", "nvcc"):
        path = shutil.which(name) if name else None
        if path:
            found.append(Path(path).resolve())
    return tuple(dict.fromkeys(found))


def _network_layer(config: SandboxConfig, wrapper: str, bwrap_problem: str | None) -> Layer:
    if not config.network:
        return Layer("network", "off", "turned off")
    if wrapper == "bwrap":
        return Layer("network", "active", "bubblewrap: a network namespace with only its own loopback")
    if wrapper == "unshare":
        return Layer("network", "active", "unshare: a network namespace with only its own loopback")
    return Layer(
        "network",
        "unavailable",
        f"the variant can reach the network: bubblewrap {bwrap_problem}; unshare {_unshare_problem()}",
    )


def _filesystem_layer(config: SandboxConfig, wrapper: str, bwrap_problem: str | None) -> Layer:
    if not config.filesystem:
        return Layer("filesystem", "off", "turned off: the variant sees every file this user can")
    if wrapper == "bwrap":
        return Layer(
            "filesystem",
            "active",
            "bubblewrap: system and Python read-only, scratch folder writable, train data read-only,"
            " val shard absent until train() returns",
        )
    return Layer(
        "filesystem",
        "unavailable",
        f"bubblewrap {bwrap_problem}: the variant can read every file this user can (the val shard"
        " included) and write where this user can; only its working folder is scratch",
    )


def _privileges_layer(
    config: SandboxConfig, *, is_root: bool, dropping: bool, bwrap_problem: str | None
) -> Layer:
    if not is_root:
        return Layer("privileges", "skipped", f"not needed: the worker is not root (uid {os.getuid()})")
    if not config.drop_privileges:
        return Layer("privileges", "off", "turned off: the variant runs as root")
    if dropping:
        return Layer(
            "privileges", "active", f"runs as uid {config.uid}, gid {config.gid}, with no capabilities"
        )
    return Layer(
        "privileges",
        "unavailable",
        f"the variant runs as root: switching to uid {config.uid} needs bubblewrap ({bwrap_problem}),"
        " which keeps the Python installation reachable for that uid",
    )


def _memory_layer(config: SandboxConfig, memory: int | None, *, uses_gpu: bool) -> Layer:
    if not config.limits:
        return Layer("memory", "off", "turned off")
    if uses_gpu:
        return Layer(
            "memory",
            "skipped",
            "not capped on CUDA: CUDA reserves huge virtual ranges, so an address-space limit would"
            " break honest runs; GPU memory is bounded by the card, host memory only by the system",
        )
    assert memory is not None
    return Layer("memory", "active", f"address space capped at {human_bytes(memory)} (RLIMIT_AS)")


def _processes_layer(config: SandboxConfig, *, is_root: bool, dropping: bool) -> Layer:
    if not config.limits:
        return Layer("processes", "off", "turned off")
    if is_root and not dropping:
        return Layer("processes", "unavailable", "not enforced: RLIMIT_NPROC does not bind root")
    return Layer(
        "processes",
        "active",
        f"at most {_process_allowance(config)} more processes and threads for its uid (RLIMIT_NPROC)",
    )


def _files_layer(config: SandboxConfig) -> Layer:
    if not config.limits:
        return Layer("files", "off", "turned off")
    return Layer(
        "files",
        "active",
        f"at most {config.open_files} open files, files up to {human_bytes(config.file_bytes)}, no core dumps",
    )


@functools.cache
def _bwrap_problem(drop_to: tuple[int, int] | None) -> str | None:
    """None when bubblewrap runs a sandbox here (switching to `drop_to` inside it); else why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "is not installed"
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER)]
    if drop_to is not None:
        launcher += ["--uid", str(drop_to[0]), "--gid", str(drop_to[1])]
    mounts = _Mounts()
    _add_base_mounts(mounts, uses_gpu=False, tmp_bytes=1 << 20)
    probe = [
        *_bwrap_namespaces_for(drop_to),
        *mounts.args,
        "--",
        *launcher,
        "--",
        sys.executable,
        "-I",
        "-S",
        "-c",
        "",
    ]
    return _run_probe(probe)


@functools.cache
def _unshare_problem() -> str | None:
    if shutil.which("unshare") is None:
        return "is not installed"
    return _run_probe([*_unshare_prefix(), sys.executable, "-I", "-S", "-c", ""])


def _run_probe(command: list[str]) -> str | None:
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"failed to start ({exc})"
    if done.returncode == 0:
        return None
    last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "")
    return f"does not work here ({last.strip() or f'exit status {done.returncode}'})"


def _uses_gpu(device: str) -> bool:
    """Whether runs on `device` touch a GPU; "auto" means yes when an NVIDIA device node exists."""
    if device == "cpu":
        return False
    if device == "cuda":
        return True
    return Path("/dev/nvidiactl").exists()


def _memory_limit(config: SandboxConfig) -> int:
    if config.memory_bytes is not None:
        return config.memory_bytes
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(total * config.memory_fraction)


def _process_allowance(config: SandboxConfig) -> int:
    # Torch starts a thread per core (and Inductor a pool of compile workers), and threads count.
    return config.process_allowance or max(1024, 32 * (os.cpu_count() or 1))


def _tasks_of(uid: int) -> int:
    """Tasks (threads included) running as `uid`: RLIMIT_NPROC counts them all, not just the run's."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue  # the process ended while we looked
    return count


# --- command lines --------------------------------------------------------------------------------


def _unshare_prefix() -> list[str]:
    # A PID namespace too: when the harness (its pid 1) dies, the kernel kills everything left in
    # it, so no process of the variant outlives the run. Without root, a user namespace (where we
    # are root) is what allows the other namespaces.
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", *user, "--"]


def _bwrap_namespaces(mode: _Mode) -> list[str]:
    args = _bwrap_namespaces_for(mode.drop_to)
    return args if mode.isolate_network else [a for a in args if a != "--unshare-net"]


def _bwrap_namespaces_for(drop_to: tuple[int, int] | None) -> list[str]:
    args = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    if drop_to is not None:
        # As root, bubblewrap keeps every capability unless told otherwise; the launcher needs only
        # these two to switch uid, and switching clears them.
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return args


class _Mounts:
    """bubblewrap mount arguments, in order, creating missing parent folders world-readable.

    bubblewrap creates implicit parents with mode 0700, which an unprivileged uid cannot enter, so
    every parent that no earlier mount provides gets an explicit `--perms 0755 --dir`. All binds
    are identity binds (a host path at the same path), so everything under a bind exists.
    """

    def __init__(self) -> None:
        self.args: list[str] = []
        self._ops: list[tuple[Path, str]] = []  # (path, "bind" | "tmpfs" | "special" | "dir" | "symlink")

    def bind(
        self, path: Path, *, writable: bool = False, device: bool = False, optional: bool = False
    ) -> None:
        flag = "--dev-bind" if device else "--bind" if writable else "--ro-bind"
        self._add(path, "bind", [f"{flag}-try" if optional else flag, str(path), str(path)])

    def symlink(self, target: str, path: Path) -> None:
        self._add(path, "symlink", ["--symlink", target, str(path)])

    def tmpfs(self, path: Path, *, mode: str = "0755", size: int | None = None) -> None:
        sized = ["--size", str(size)] if size is not None else []
        self._add(path, "tmpfs", [*sized, "--perms", mode, "--tmpfs", str(path)])

    def special(self, flag: str, path: Path) -> None:
        self._add(path, "special", [flag, str(path)])

    def _add(self, path: Path, kind: str, args: list[str]) -> None:
        for parent in reversed(path.parents):
            if not self._exists(parent):
                self.args += ["--perms", "0755", "--dir", str(parent)]
                self._ops.append((parent, "dir"))
        self.args += args
        self._ops.append((path, kind))

    def _exists(self, path: Path) -> bool:
        # The latest mount at or above `path` decides: a bind provides what is under it, a tmpfs
        # (or /proc, /dev) hides whatever was there before.
        for mounted, kind in reversed(self._ops):
            if path == mounted:
                return True
            if path.is_relative_to(mounted) and kind in ("bind", "tmpfs", "special"):
                return kind == "bind"
        return path == Path("/")


def _add_base_mounts(mounts: _Mounts, *, uses_gpu: bool, tmp_bytes: int) -> None:
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            mounts.symlink(os.readlink(path), path)
        elif path.is_dir():
            mounts.bind(path)
    mounts.bind(Path("/sys"))
    mounts.special("--proc", Path("/proc"))
    mounts.special("--dev", Path("/dev"))
    if uses_gpu:
        for node in sorted(Path("/dev").glob("nvidia*")):
            mounts.bind(node, device=True)
    mounts.tmpfs(Path("/tmp"), mode="1777", size=tmp_bytes)
    mounts.tmpfs(Path("/dev/shm"), mode="1777", size=tmp_bytes)
    # After the in-memory folders, which would hide them: a checkout or a virtual environment
    # under /tmp is common.
    for folder in _python_folders():
        mounts.bind(folder)


def _python_folders() -> list[Path]:
    """The interpreter, its standard library and site-packages, and this project's two packages.

    Only `worker` and `shared` of the project: its folder may hold data (a demo's coordinator
    key, worker homes) that is none of the variant's business.
    """
    candidates: set[str | Path] = {
        sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        *site.getsitepackages(),
        PROJECT_ROOT / "worker", PROJECT_ROOT / "shared",
    }  # fmt: skip
    if site.ENABLE_USER_SITE:
        candidates.add(site.getusersitepackages())
    folders = sorted({Path(c).resolve() for c in candidates if Path(c).is_dir()})
    system = [Path(name) for name in SYSTEM_DIRS]
    # A folder inside another one (or inside a system folder) is already there.
    return [
        f for f in folders if not any(f != other and f.is_relative_to(other) for other in [*folders, *system])
    ]
