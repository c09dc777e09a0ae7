"""The run-time guard (trust layer 3, inside the variant's process): what the static policy meant to
forbid, refused again where it happens, so that a way past the policy gains nothing.

The host installs it after its own set-up (torch imported, train shards mapped, pipes open) and
before the variant is imported:

- **seccomp** (libseccomp, through `pyseccomp`), synchronised onto every thread: `execve`, `fork`,
  `vfork`, `clone` without `CLONE_THREAD`, `ptrace`, `process_vm_readv/writev`, sockets, and the
  kernel's administrative calls (`mount`, `unshare`, `bpf`, `perf_event_open`, module loading...)
  fail with EPERM. This holds for native code too. On CUDA, Triton runs `ptxas` and the C
  compiler to build each kernel, so processes and `execve` stay allowed there (the audit hook
  still allows only those programs).
- **a PEP 578 audit hook**, which cannot be removed once added. It refuses, from anywhere in the
  process: starting processes (but the CUDA toolchain), sockets, ctypes and native libraries
  (CPU runs), opening a file for writing outside the scratch folder, and opening for reading
  anything but the paths a run needs (the Python installation, this project's packages, the
  train shards, scratch, and a few system files). From the variant's own code (the innermost
  Python frame is train.py) it also refuses compiling or executing code, imports off the policy's
  allowlist, and frame, garbage-collector and interpreter introspection. Libraries keep those:
  dataclasses and torch.compile build code with `exec`, warnings reads frames.

A refusal raises `GuardRefusal` (a PermissionError) in the variant and sends a `guard` event with a
stable code to the supervisor, which ends the run there: `rejected`, layer `guard`. Catching the
exception changes nothing.

Standard library only, apart from `pyseccomp` (optional: without it, or without libseccomp, the
filter is reported unavailable and the hook stays).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.policy.rules import ALLOWED_IMPORT_ROOTS, ALLOWED_PROJECT_PACKAGE
from shared.run_codes import (
    GUARD_CODE,
    GUARD_FILE,
    GUARD_IMPORT,
    GUARD_INTROSPECTION,
    GUARD_NATIVE,
    GUARD_NETWORK,
    GUARD_PROCESS,
)

CLONE_THREAD = 0x00010000
# Calls no training run makes: refused outright by the filter.
ADMIN_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "pidfd_open",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "open_by_handle_at", "name_to_handle_at", "fanotify_init", "quotactl",
    "acct", "swapon", "swapoff", "reboot", "syslog", "personality",
)  # fmt: skip
NETWORK_SYSCALLS = ("socket", "socketpair")
PROCESS_SYSCALLS = ("execve", "execveat", "fork", "vfork")
# Calls that create, change or remove files. A CPU run writes nothing once the host is set up, so
# after that these are refused outright (on CUDA, Triton and Inductor write their caches, so there
# the filesystem layer and the audit hook keep writes in scratch).
FILE_CHANGE_SYSCALLS = (
    "creat", "unlink", "unlinkat", "rename", "renameat", "renameat2", "rmdir", "mkdir", "mkdirat",
    "truncate", "ftruncate", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
    "symlink", "symlinkat", "link", "linkat", "mknod", "mknodat", "utime", "utimes", "utimensat",
    "futimesat", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
)  # fmt: skip
O_ACCMODE, O_WRONLY, O_RDWR = os.O_ACCMODE, os.O_WRONLY, os.O_RDWR
O_CREAT, O_TRUNC = os.O_CREAT, os.O_TRUNC

# Audit events refused whoever makes them.
PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
    }
)
NETWORK_EVENTS = frozenset({"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo"})
NATIVE_EVENTS = frozenset(
    {"ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.string_at",
     "ctypes.wstring_at", "ctypes.call_function", "ctypes.addressof", "ctypes.PyObj_FromPtr"}
)  # fmt: skip
# Audit events refused when the variant's own code makes them.
CODE_EVENTS = frozenset(
    {"exec", "compile", "code.__new__", "function.__new__", "marshal.loads", "marshal.load"}
)
INTROSPECTION_EVENTS = frozenset(
    {"sys._getframe", "sys._current_frames", "sys._current_exceptions", "gc.get_objects",
     "gc.get_referrers", "gc.get_referents", "object.__getattr__", "object.__setattr__",
     "object.__delattr__", "sys.settrace", "sys.setprofile", "sys.addaudithook",
     "sys._getframemodulename", "cpython.PyInterpreterState_Clear", "sys.set_asyncgen_hooks_firstiter"}
)  # fmt: skip
WATCHED = (
    PROCESS_EVENTS | NETWORK_EVENTS | NATIVE_EVENTS | CODE_EVENTS | INTROSPECTION_EVENTS | {"open", "import"}
)

# Files any run may read, wherever Python and the libraries live.
SYSTEM_READABLE = (
    "/proc/self", "/proc/thread-self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
    "/sys/devices/system/cpu", "/sys/fs/cgroup", "/dev/null", "/dev/urandom", "/dev/random",
    "/usr/lib", "/usr/lib64", "/usr/share", "/usr/local/lib", "/lib", "/lib64",
    "/etc/localtime", "/etc/ld.so.cache", "/etc/os-release",
    "/proc/sys/kernel/random/boot_id",  # Inductor keys its caches by boot
)  # fmt: skip
# Files any run may open for writing: subprocess opens /dev/null read-write for a child's
# DEVNULL streams (Inductor's and Triton's compiler calls).
SYSTEM_WRITABLE = ("/dev/null",)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class GuardRefusal(PermissionError):
    """The guard refused an action; `code` is stable (shared.run_codes)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(errno.EPERM, f"the run-time guard refused {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class GuardConfig:
    variant_path: Path  # train.py: frames from this file are the variant's
    scratch: Path  # the only place a run writes
    readable: tuple[Path, ...] = ()  # files and folders the run may read (data, Python, project)
    toolchain: tuple[Path, ...] = ()  # programs a library may start (CUDA: ptxas, the C compiler)
    seccomp: bool = True
    events_fd: int | None = None  # where a refusal is reported to the supervisor


@dataclass
class GuardState:
    """What was installed, and the first refusal (kept for the host's failure report)."""

    hook: bool = False
    seccomp: str = "off"  # "active", "off", or why it is unavailable
    first_refusal: GuardRefusal | None = None
    refusals: int = 0
    notes: list[str] = field(default_factory=list)


def install(config: GuardConfig) -> GuardState:
    """Load the seccomp filter (when asked and possible), then add the audit hook."""
    state = GuardState()
    if config.seccomp:
        state.seccomp = _load_seccomp(allow_processes=bool(config.toolchain))
    sys.addaudithook(_make_hook(config, state))
    state.hook = True
    return state


def python_paths() -> list[Path]:
    """The interpreter's own folders and site-packages: what imports read."""
    import site

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages()}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    return sorted({Path(r).resolve() for r in roots if r})


# --- the filter ---------------------------------------------------------------------------------


def _load_seccomp(*, allow_processes: bool) -> str:
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # OSError: libseccomp.so is missing
        return f"unavailable: pyseccomp cannot be loaded ({exc})"
    try:
        refuse = seccomp.ERRNO(errno.EPERM)
        rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        # Every thread of the process, the ones torch started before us included.
        rules.set_attr(seccomp.Attr.CTL_TSYNC, 1)
        names: list[str] = [*ADMIN_SYSCALLS, *NETWORK_SYSCALLS]
        if not allow_processes:
            names += PROCESS_SYSCALLS
            # A new thread is clone(CLONE_THREAD|...); anything else would be a new process.
            rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
            # clone3 and openat2 hide their flags in memory the filter cannot read: "not
            # implemented", and the C library falls back to clone and openat, judged below.
            rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
            rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "openat2")
            names += FILE_CHANGE_SYSCALLS
            for syscall, flags_arg in (("open", 1), ("openat", 2)):
                for mask, value in (
                    (O_ACCMODE, O_WRONLY),
                    (O_ACCMODE, O_RDWR),
                    (O_CREAT, O_CREAT),
                    (O_TRUNC, O_TRUNC),
                ):
                    rules.add_rule(refuse, syscall, seccomp.Arg(flags_arg, seccomp.MASKED_EQ, mask, value))
        for name in names:
            try:
                rules.add_rule(refuse, name)
            except (OSError, ValueError, RuntimeError):
                continue  # a call this kernel or architecture does not have
        rules.load()
    except (OSError, ValueError, RuntimeError) as exc:
        return f"unavailable: the filter could not be loaded ({exc})"
    return "active"


# --- the audit hook -----------------------------------------------------------------------------

# Events that change files: refused outside scratch (their first argument is the path, or the
# source of a rename/link).
FILE_CHANGE_EVENTS = frozenset(
    {"os.rename", "os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.symlink", "os.link",
     "os.mkdir", "os.utime", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr", "os.mknod",
     "os.mkfifo", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
     "shutil.copytree", "shutil.chown"}
)  # fmt: skip
LISTING_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.listxattr"})
# Walks of every live object: refused whoever makes them, since they lead to the guard itself.
GC_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})


def _make_hook(config: GuardConfig, state: GuardState) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook, as a closure over immutable settings: no attribute of it can be changed to
    disarm it, and nothing but the interpreter's hook list refers to it (`gc` walks are refused).
    Fast path: one set lookup for the events it does not watch."""
    variant = str(config.variant_path.resolve())
    scratch = _prefix(config.scratch)
    readable = (*(_prefix(p) for p in (*config.readable, *map(Path, SYSTEM_READABLE))), scratch)
    writable = (scratch, *(_prefix(p) for p in SYSTEM_WRITABLE))
    toolchain = frozenset(str(p.resolve()) for p in config.toolchain)
    strict_native = not config.toolchain
    events_fd = config.events_fd
    watched = WATCHED | FILE_CHANGE_EVENTS | LISTING_EVENTS | GC_EVENTS
    allowed_roots = ALLOWED_IMPORT_ROOTS | {ALLOWED_PROJECT_PACKAGE.split(".")[0]}
    busy = threading.local()
    getframe = sys._getframe
    write = os.write
    fsdecode, abspath, realpath = os.fsdecode, os.path.abspath, os.path.realpath
    get_exec_path, isfile, access = os.get_exec_path, os.path.isfile, os.access
    this_file = __file__

    def path_of(value: object) -> str | None:
        if isinstance(value, int) or value is None:
            return None  # an fd this process already holds, or no path at all
        try:
            return abspath(fsdecode(value))  # type: ignore[arg-type]
        except TypeError:
            return None

    def program_of(executable: object, env: object) -> str | None:
        """The file a process start would run, resolved as exec resolves it: a bare name through
        the PATH of the environment the child gets. None for a name that leads through scratch,
        where the variant could swap a link between this check and the exec."""
        if not isinstance(executable, bytes | str | os.PathLike):
            return None
        name = fsdecode(executable)
        named: str | None = name if os.sep in name else None
        for folder in () if named is not None else get_exec_path(env if isinstance(env, dict) else None):
            candidate = os.path.join(folder, name)
            if isfile(candidate) and access(candidate, os.X_OK):
                named = candidate
                break
        if named is None or under(realpath(os.path.dirname(abspath(named))), (scratch,)):
            return None
        return realpath(named)

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any((path + os.sep).startswith(root) for root in roots)

    def from_variant() -> bool:
        frame: Any = getframe(1)
        while frame is not None and frame.f_code.co_filename == this_file:
            frame = frame.f_back
        return frame is not None and frame.f_code.co_filename == variant

    def judge(event: str, args: tuple[Any, ...]) -> tuple[str, ...] | None:
        """(code, reason[, detail]): the reason is fixed text for the supervisor and the report,
        the detail (a path, a program) goes only into the exception and the run's local log."""
        if event == "open":
            path, mode, flags = ((*tuple(args), None, None, None))[:3]
            full = path_of(path)
            if full is None:
                return None
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & WRITE_FLAGS)
            )
            if writing:
                return (
                    None
                    if under(full, writable)
                    else (GUARD_FILE, "writing a file outside the scratch folder", full)
                )
            return (
                None if under(full, readable) else (GUARD_FILE, "reading a file this run does not need", full)
            )
        if event in FILE_CHANGE_EVENTS:
            targets = (
                [path_of(a) for a in args[:2]]
                if event in ("os.rename", "os.link", "shutil.move")
                else [path_of(args[0] if args else None)]
            )
            if all(t is None or under(t, (scratch,)) for t in targets):
                return None
            return GUARD_FILE, f"changing files outside the scratch folder ({event})", str(targets)
        if event in LISTING_EVENTS:
            full = path_of(args[0] if args else ".")
            return (
                None
                if full is None or under(full, readable)
                else (GUARD_FILE, "listing a folder this run does not need", full)
            )
        if event in PROCESS_EVENTS:
            # subprocess.Popen(executable, args, cwd, env), then, when subprocess takes that road,
            # os.posix_spawn(path, argv, env): both name the program the child will run.
            if event in ("subprocess.Popen", "os.posix_spawn") and toolchain and not from_variant():
                env_at = 3 if event == "subprocess.Popen" else 2
                env = args[env_at] if len(args) > env_at else None
                program = program_of(args[0] if args else None, env)
                if program is not None and program in toolchain:
                    return None
            return GUARD_PROCESS, f"starting a process ({event})", repr(args[0] if args else None)
        if event in NETWORK_EVENTS:
            return GUARD_NETWORK, f"a network connection ({event})"
        if event in NATIVE_EVENTS and (strict_native or from_variant()):
            return GUARD_NATIVE, f"native code through ctypes ({event})"
        if event in GC_EVENTS:
            return GUARD_INTROSPECTION, f"introspection of the interpreter ({event})"
        if event == "import":
            name = args[0] if args else ""
            if not isinstance(name, str) or not from_variant():
                return None
            root = name.split(".")[0]
            if root in allowed_roots and (root != "shared" or name.startswith(ALLOWED_PROJECT_PACKAGE)):
                return None
            return GUARD_IMPORT, "an import off the allowlist"
        if event in CODE_EVENTS and from_variant():
            return GUARD_CODE, f"running code built at run time ({event})"
        if event in INTROSPECTION_EVENTS and from_variant():
            return GUARD_INTROSPECTION, f"introspection of the interpreter ({event})"
        return None

    def refuse(code: str, reason: str, detail: str = "") -> None:
        refusal = GuardRefusal(code, f"{reason}: {detail}" if detail else reason)
        state.refusals += 1
        if state.first_refusal is None:
            state.first_refusal = refusal
            # The run's own log (stderr) says what was refused, for the volunteer or a maintainer
            # to read: the supervisor may end the run before the exception is printed. ascii():
            # a variant-chosen path carries no terminal escapes into anyone's terminal.
            with contextlib.suppress(OSError):
                write(2, f"the run-time guard refused {reason}{f': {detail!a}' if detail else ''}\n".encode())
            if events_fd is not None:
                line = json.dumps(
                    {"event": "guard", "code": code, "reason": f"the run-time guard refused {reason}"}
                )
                with contextlib.suppress(OSError):
                    write(events_fd, line.encode("utf-8") + b"\n")
        raise refusal

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in watched or getattr(busy, "on", False):
            return
        busy.on = True
        try:
            verdict = judge(event, args)
        finally:
            busy.on = False
        if verdict is not None:
            refuse(*verdict)

    return hook


def _prefix(path: Path | str) -> str:
    return os.path.abspath(os.path.realpath(path)) + os.sep


# --- detection, for `worker doctor` ------------------------------------------------------------

_SELF_TEST = """
import os, sys
from pathlib import Path
from worker.execution.guard import GuardConfig, install
state = install(GuardConfig(variant_path=Path("/nonexistent/train.py"), scratch=Path.cwd(), seccomp=True))
print(state.seccomp)
try:
    pid = os.fork()
except PermissionError as exc:
    print("hook refused fork")
else:
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print("fork allowed")
"""


def self_test(python: str = sys.executable, *, cwd: Path | None = None) -> tuple[str, str]:
    """(hook state, seccomp state) as a fresh process on this machine reports them."""
    from worker.execution.sandbox import PROJECT_ROOT

    try:
        done = subprocess.run(
            [python, "-c", _SELF_TEST],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd or Path.cwd(),
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable: the self-test did not run ({exc})", "unavailable: the self-test did not run"
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) < 2:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"unavailable: {last}", f"unavailable: {last}"
    hook = "active" if lines[1] == "hook refused fork" else "unavailable: it did not refuse fork()"
    return hook, lines[0]


def readable_for_run(paths: Iterable[Path]) -> tuple[Path, ...]:
    """The run's own files plus Python's folders and this project's two packages."""
    from worker.execution.sandbox import PROJECT_ROOT

    return (*paths, *python_paths(), PROJECT_ROOT / "worker", PROJECT_ROOT / "shared")
