"""The run-time guard, installed in small real processes: what it refuses, to whom, and with which code.

Each test starts a fresh interpreter (the audit hook cannot be removed once added). It imports what
it needs, installs the guard with a scratch folder and a variant file, as the host does, then
loads the variant file (as the host imports train.py) and calls its `probe(tools)`, which tries
things and returns what happened to each: "ok", the guard's code, or the error's name and errno.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from worker.execution.guard import self_test
from worker.execution.sandbox import PROJECT_ROOT

# Runs before the variant: `tools` hands it the modules it may not import itself.
PRELUDE = """
import ctypes, dataclasses, errno, gc, importlib.util, json, os, shutil, socket, subprocess, sys, threading
from pathlib import Path

from worker.execution.guard import GuardConfig, GuardRefusal, _load_seccomp, install, readable_for_run

VARIANT = Path(sys.argv[1]).resolve()
MODE = sys.argv[2]
events_read, events_write = os.pipe()


def attempt(action):
    try:
        action()
    except GuardRefusal as exc:
        return exc.code
    except OSError as exc:
        return f"{type(exc).__name__}:{errno.errorcode.get(exc.errno, exc.errno)}"
    return "ok"


if MODE == "guard":
    state = install(GuardConfig(variant_path=VARIANT, scratch=Path.cwd(), readable=readable_for_run([]),
                                seccomp=False, events_fd=events_write))
elif MODE == "guard-toolchain":  # as on CUDA, with `true` standing in for ptxas
    state = install(GuardConfig(variant_path=VARIANT, scratch=Path.cwd(), readable=readable_for_run([]),
                                toolchain=(Path(shutil.which("true")).resolve(),), seccomp=False,
                                events_fd=events_write))
elif MODE == "seccomp-only":
    state = _load_seccomp(allow_processes=False)
    assert state == "active", state
elif MODE == "seccomp-processes":
    state = _load_seccomp(allow_processes=True)
    assert state == "active", state

spec = importlib.util.spec_from_file_location("train", VARIANT)
variant = importlib.util.module_from_spec(spec)
sys.modules["train"] = variant
spec.loader.exec_module(variant)
tools = dict(attempt=attempt, os=os, sys=sys, gc=gc, socket=socket, subprocess=subprocess, ctypes=ctypes,
             threading=threading, dataclasses=dataclasses, outside=Path(sys.argv[3]), true=shutil.which("true"))
result = variant.probe(tools)
os.close(events_write)
result["events"] = os.read(events_read, 1 << 16).decode().splitlines()
print(json.dumps(result))
"""


def guarded(tmp_path: Path, variant: str, *, mode: str = "guard", stderr: bool = False) -> dict[str, Any]:
    """Run `variant`'s probe(tools) under the guard (or the seccomp filter alone) and return its answers
    (with what the process wrote to stderr, when asked)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    (tmp_path / "outside").mkdir(exist_ok=True)
    train_py = scratch / "train.py"
    train_py.write_text(textwrap.dedent(variant))
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE, str(train_py), mode, str(tmp_path / "outside")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=scratch,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    if stderr:
        result["stderr"] = done.stderr
    return result


def test_starting_a_process_is_refused_from_anywhere(tmp_path: Path) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, os, subprocess = tools["attempt"], tools["os"], tools["subprocess"]
            return {
                "fork": attempt(os.fork),
                "subprocess": attempt(lambda: subprocess.run(["true"])),
                "system": attempt(lambda: os.system("true")),
                "posix_spawn": attempt(lambda: os.posix_spawn("/bin/true", ["true"], {})),
                # A library's frame, not the variant's: processes are refused whoever asks.
                "library": attempt(lambda: subprocess.check_output(["true"])),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "fork": "guard_process",
        "subprocess": "guard_process",
        "system": "guard_process",
        "posix_spawn": "guard_process",
        "library": "guard_process",
    }


def test_the_seccomp_filter_alone_refuses_new_processes_and_sockets_but_not_threads(tmp_path: Path) -> None:
    # No audit hook here: what fails, fails in the kernel.
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, os, socket, threading = tools["attempt"], tools["os"], tools["socket"], tools["threading"]
            started = []
            thread = threading.Thread(target=lambda: started.append(True))
            thread.start()
            thread.join()
            return {
                "fork": attempt(os.fork),
                "subprocess": attempt(lambda: tools["subprocess"].run(["true"])),
                "socket": attempt(socket.socket),
                "thread": "ok" if started else "not started",
            }
        """,
        mode="seccomp-only",
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "fork": "PermissionError:EPERM",
        "subprocess": "PermissionError:EPERM",
        "socket": "PermissionError:EPERM",
        "thread": "ok",
    }


def test_the_seccomp_filter_for_a_cuda_toolchain_allows_processes_but_still_no_sockets(
    tmp_path: Path,
) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt = tools["attempt"]
            return {
                "subprocess": attempt(lambda: tools["subprocess"].run(["true"], check=True)),
                "socket": attempt(tools["socket"].socket),
            }
        """,
        mode="seccomp-processes",
    )

    assert (result["subprocess"], result["socket"]) == ("ok", "PermissionError:EPERM")


def test_a_toolchain_program_runs_by_name_only_where_the_childs_path_finds_the_real_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "scratch" / "links").mkdir(parents=True)
    (tmp_path / "scratch" / "links" / "true").symlink_to(shutil.which("true") or "/bin/true")
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, os, run = tools["attempt"], tools["os"], tools["subprocess"].run
            # A `true` of the variant's own, in scratch, first on the PATH it hands the child.
            os.mkdir("bin")
            with open("bin/true", "w") as handle:
                handle.write("#!/bin/sh\\nexit 0\\n")
            os.chmod("bin/true", 0o755)
            decoy_first = {"PATH": os.getcwd() + "/bin:" + os.environ["PATH"]}
            return {
                "by_name": attempt(lambda: run(["true"], check=True)),
                "by_path": attempt(lambda: run([tools["true"]], check=True)),
                # close_fds=False: subprocess starts it with os.posix_spawn, a second audit event.
                "spawned": attempt(lambda: run([tools["true"]], check=True, close_fds=False)),
                "decoy_spawned": attempt(lambda: run([os.getcwd() + "/bin/true"], close_fds=False)),
                "decoy_by_name": attempt(lambda: run(["true"], env=decoy_first)),
                "decoy_by_path": attempt(lambda: run([os.getcwd() + "/bin/true"])),
                # A link in scratch to the real program (the hook refuses making one, so the test
                # left it there): whatever is in scratch could be swapped between check and exec.
                "link_in_scratch": attempt(lambda: run([os.getcwd() + "/links/true"])),
                "making_a_link": attempt(lambda: os.symlink(tools["true"], "bin/real")),
                "not_on_the_path": attempt(lambda: run(["no-such-program"])),
                "another_program": attempt(lambda: run(["false"])),
                # How Inductor and Triton run their compilers: streams to /dev/null.
                "quiet": attempt(lambda: run(["true"], check=True, stdin=-3, stdout=-3, stderr=-3)),
            }
        """,
        mode="guard-toolchain",
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "by_name": "ok",
        "by_path": "ok",
        "spawned": "ok",
        "decoy_spawned": "guard_process",
        "decoy_by_name": "guard_process",
        "decoy_by_path": "guard_process",
        "link_in_scratch": "guard_process",
        "making_a_link": "guard_file",
        "not_on_the_path": "guard_process",
        "another_program": "guard_process",
        "quiet": "ok",
    }


def test_a_refusal_names_what_it_refused_in_the_runs_own_log(tmp_path: Path) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt = tools["attempt"]
            boot = attempt(lambda: open("/proc/sys/kernel/random/boot_id").read())
            return {"boot_id": boot, "escapes": attempt(lambda: open(tools["outside"] / "\\x1b[2Jsecret"))}
        """,
        stderr=True,
    )

    # Inductor reads the boot id for its cache keys: a run may.
    assert (result["boot_id"], result["escapes"]) == ("ok", "guard_file")
    # The path is in the log, escaped (no terminal control from a variant-chosen name); the
    # supervisor's reason stays the code's own wording.
    assert result["stderr"].splitlines() == [
        "the run-time guard refused reading a file this run does not need: "
        + ascii(str(tmp_path / "outside" / "\x1b[2Jsecret"))
    ]
    assert [json.loads(line)["reason"] for line in result["events"]] == [
        "the run-time guard refused reading a file this run does not need"
    ]


def test_files_are_written_only_in_scratch_and_read_only_on_the_runs_paths(tmp_path: Path) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, os, outside = tools["attempt"], tools["os"], tools["outside"]

            def write(path):
                with open(path, "w") as handle:
                    handle.write("planted")

            def read(path):
                with open(path, "rb") as handle:
                    handle.read(1)

            return {
                "write scratch": attempt(lambda: write("inside.txt")),
                "write outside": attempt(lambda: write(outside / "planted.txt")),
                "os.open outside": attempt(lambda: os.open(outside / "flags.txt", os.O_WRONLY | os.O_CREAT)),
                "append through ..": attempt(lambda: open("../outside/../x.txt", "a")),
                "read /etc/passwd": attempt(lambda: read("/etc/passwd")),
                "read scratch": attempt(lambda: read("inside.txt")),
                "read the variant": attempt(lambda: read(__file__)),
                "read the interpreter's library": attempt(lambda: read(os.__file__)),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "write scratch": "ok",
        "write outside": "guard_file",
        "os.open outside": "guard_file",
        "append through ..": "guard_file",
        "read /etc/passwd": "guard_file",
        "read scratch": "ok",
        "read the variant": "ok",
        "read the interpreter's library": "ok",
    }
    assert (tmp_path / "scratch" / "inside.txt").read_text() == "planted"
    assert list((tmp_path / "outside").iterdir()) == []
    assert not (tmp_path / "x.txt").exists()


def test_the_variant_may_not_build_code_at_run_time_but_its_libraries_may(tmp_path: Path) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, dataclasses = tools["attempt"], tools["dataclasses"]

            def make_dataclass():
                @dataclasses.dataclass(frozen=True)
                class Shape:  # dataclasses builds __init__ and friends with exec
                    depth: int = 4

                assert Shape().depth == 4

            return {
                "exec": attempt(lambda: exec("x = 1")),
                "eval": attempt(lambda: eval("1 + 1")),
                "compile": attempt(lambda: compile("1", "<string>", "eval")),
                "dataclass": attempt(make_dataclass),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "exec": "guard_code",
        "eval": "guard_code",
        "compile": "guard_code",
        "dataclass": "ok",
    }


def test_the_variant_may_not_look_at_frames_or_the_garbage_collectors_objects(tmp_path: Path) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, sys, gc = tools["attempt"], tools["sys"], tools["gc"]
            return {
                "_getframe": attempt(lambda: sys._getframe()),
                "_current_frames": attempt(lambda: sys._current_frames()),
                "get_objects": attempt(lambda: gc.get_objects()),
                "get_referrers": attempt(lambda: gc.get_referrers(tools)),
                "settrace": attempt(lambda: sys.settrace(None)),
                "__code__": attempt(lambda: probe.__code__),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "_getframe": "guard_introspection",
        "_current_frames": "guard_introspection",
        "get_objects": "guard_introspection",
        "get_referrers": "guard_introspection",
        "settrace": "guard_introspection",
        "__code__": "guard_introspection",
    }


def test_the_variant_imports_only_from_the_allowlist(tmp_path: Path) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, sys = tools["attempt"], tools["sys"]
            fresh = "sqlite3" not in sys.modules and "statistics" not in sys.modules

            def import_sqlite3():
                import sqlite3  # noqa: F401

            def import_statistics():
                import statistics

                assert statistics.mean([1, 3]) == 2  # and what it imports itself, from its own frames

            return {
                "fresh": fresh,
                "sqlite3": attempt(import_sqlite3),
                "statistics": attempt(import_statistics),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "fresh": True,  # neither was imported yet, so each import really ran
        "sqlite3": "guard_import",
        "statistics": "ok",
    }


def test_sockets_and_native_code_are_refused_from_anywhere(tmp_path: Path) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, socket, ctypes = tools["attempt"], tools["socket"], tools["ctypes"]
            return {
                "socket": attempt(socket.socket),
                "getaddrinfo": attempt(lambda: socket.getaddrinfo("localhost", 80)),
                "dlopen": attempt(lambda: ctypes.CDLL(None)),
                "string_at": attempt(lambda: ctypes.string_at(id(tools), 8)),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "socket": "guard_network",
        "getaddrinfo": "guard_network",
        "dlopen": "guard_native",
        "string_at": "guard_native",
    }


def test_the_first_refusal_is_reported_once_on_the_events_pipe_even_when_the_variant_catches_it(
    tmp_path: Path,
) -> None:
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt = tools["attempt"]

            def read():
                try:
                    open("/etc/passwd").close()
                except PermissionError:
                    pass  # caught: the supervisor has heard already

            return {"first": attempt(read), "second": attempt(lambda: tools["os"].fork())}
        """,
    )

    assert (result["first"], result["second"]) == ("ok", "guard_process")
    assert [json.loads(line) for line in result["events"]] == [
        {
            "event": "guard",
            "code": "guard_file",
            "reason": "the run-time guard refused reading a file this run does not need",
        }
    ]


@pytest.mark.parametrize("layer", ["audit hook", "seccomp"])
def test_the_self_test_finds_both_guard_layers_active_on_this_machine(layer: str) -> None:
    hook, seccomp = self_test()

    assert {"audit hook": hook, "seccomp": seccomp}[layer] == "active"


def test_the_seccomp_filter_alone_refuses_every_file_change_on_a_cpu_run(tmp_path: Path) -> None:
    # No audit hook: the kernel refuses, inside scratch too (a CPU run writes nothing once set up),
    # and reading stays possible.
    (tmp_path / "outside").mkdir()
    victim = tmp_path / "outside" / "victim.txt"
    victim.write_text("kept")
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, os, outside = tools["attempt"], tools["os"], tools["outside"]
            victim = str(outside / "victim.txt")
            return {
                "create": attempt(lambda: open("new.txt", "w")),
                "append": attempt(lambda: os.open(victim, os.O_WRONLY | os.O_APPEND)),
                "read-write": attempt(lambda: os.open(victim, os.O_RDWR)),
                "remove": attempt(lambda: os.remove(victim)),
                "rename": attempt(lambda: os.rename(victim, victim + ".moved")),
                "chmod": attempt(lambda: os.chmod(victim, 0o777)),
                "mkdir": attempt(lambda: os.mkdir("folder")),
                "symlink": attempt(lambda: os.symlink(victim, "link")),
                "read": attempt(lambda: open(victim).read()),
            }
        """,
        mode="seccomp-only",
    )

    refused = "PermissionError:EPERM"
    assert {k: v for k, v in result.items() if k != "events"} == {
        "create": refused,
        "append": refused,
        "read-write": refused,
        "remove": refused,
        "rename": refused,
        "chmod": refused,
        "mkdir": refused,
        "symlink": refused,
        "read": "ok",
    }
    assert victim.read_text() == "kept" and not (tmp_path / "scratch" / "new.txt").exists()


def test_the_hook_refuses_changing_or_listing_files_outside_scratch_from_anywhere(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    victim = tmp_path / "outside" / "victim.txt"
    victim.write_text("kept")
    result = guarded(
        tmp_path,
        """
        def probe(tools):
            attempt, os, outside = tools["attempt"], tools["os"], tools["outside"]
            import shutil  # a library does it on the variant's behalf: still refused
            victim = str(outside / "victim.txt")
            open("mine.txt", "w").close()
            return {
                "remove outside": attempt(lambda: os.remove(victim)),
                "rename out of scratch": attempt(lambda: os.rename("mine.txt", str(outside / "mine.txt"))),
                "shutil.rmtree outside": attempt(lambda: shutil.rmtree(str(outside))),
                "list outside": attempt(lambda: os.listdir(str(outside))),
                "list scratch": attempt(lambda: os.listdir(".")),
                "rename in scratch": attempt(lambda: os.rename("mine.txt", "yours.txt")),
                "remove in scratch": attempt(lambda: os.remove("yours.txt")),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "remove outside": "guard_file",
        "rename out of scratch": "guard_file",
        "shutil.rmtree outside": "guard_file",
        "list outside": "guard_file",
        "list scratch": "ok",
        "rename in scratch": "ok",
        "remove in scratch": "ok",
    }
    assert victim.read_text() == "kept"


def test_no_frame_may_walk_the_garbage_collector_where_the_hook_could_be_found(tmp_path: Path) -> None:
    # A library frame doing the walk for the variant (here functools.partial called from
    # dataclasses' generated __init__) is refused as well: the walk leads to the guard itself.
    result = guarded(
        tmp_path,
        """
        import functools

        def probe(tools):
            attempt, gc, dataclasses = tools["attempt"], tools["gc"], tools["dataclasses"]

            @dataclasses.dataclass
            class Sneaky:
                found: list = dataclasses.field(default_factory=functools.partial(gc.get_objects))

            return {
                "direct": attempt(gc.get_objects),
                "from a library frame": attempt(Sneaky),
                "referrers": attempt(lambda: gc.get_referrers(attempt)),
            }
        """,
    )

    assert {k: v for k, v in result.items() if k != "events"} == {
        "direct": "guard_introspection",
        "from a library frame": "guard_introspection",
        "referrers": "guard_introspection",
    }
