"""Every process a run started, found through /proc, and killed without a gap to slip through.

A run's processes can leave its process group (a session of their own) and, once their parent is
gone, its tree too: an orphan is reparented to the nearest subreaper, or to init. A kill that
lists the tree and then kills what it listed leaves two gaps: a process forked after the list was
read, and an orphan made by a parent that exits (or is killed) before its child is reached.

So `kill_tree` stops first: SIGSTOP to the group and to every descendant, and the tree read
again, until a pass finds nothing new and every process found is seen stopped. A stopped process
can neither fork, exit nor wake another with SIGCONT, so the last pass has the whole tree, parents
and all. Only then is everything killed. `become_subreaper`
makes the process that runs the variant (the scorer) the parent of its orphans, so that they stay
in its tree, which it sweeps before it exits.

Only the standard library: this runs in the worker and in the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

# A run that keeps its tree from freezing for this many passes is killed anyway: by what the
# passes found, and by its process group.
MAX_STOP_PASSES = 200
PR_SET_CHILD_SUBREAPER = 36


def kill_tree(root: int, *, group: bool, reap_timeout_s: float) -> dict[int, str]:
    """Stop, then SIGKILL, every descendant of `root` (and `root`'s process group when `group`),
    and wait up to `reap_timeout_s` until each has exited. Returns {pid: start time} of those killed.

    `root` itself is left to its parent to kill and reap (its group's kill reaches it).
    """
    stopped: dict[int, str] = {}
    for _ in range(MAX_STOP_PASSES):
        if group:
            _signal_group(root, signal.SIGSTOP)
        for pid, start in stopped.items():  # again: one of the tree's may have sent another a SIGCONT
            if is_running(pid, start):
                _signal(pid, signal.SIGSTOP)
        fresh = {pid: start for pid, start in descendants(root).items() if stopped.get(pid) != start}
        for pid in fresh:
            _signal(pid, signal.SIGSTOP)
        stopped.update(fresh)
        if not fresh and all(_is_frozen(pid, start) for pid, start in stopped.items()):
            break  # nothing new, and nothing that could fork, exit or wake another
        time.sleep(0.001)  # a SIGSTOP lands when its process is next scheduled
    if group:
        _signal_group(root, signal.SIGKILL)
    for pid, start in stopped.items():
        if is_running(pid, start):  # not a pid that was reused after its process ended
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + reap_timeout_s
    while time.monotonic() < deadline and any(is_running(pid, start) for pid, start in stopped.items()):
        time.sleep(0.01)
    return stopped


def become_subreaper() -> bool:
    """PR_SET_CHILD_SUBREAPER: orphans of this process's descendants become its children, not init's."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_children() -> None:
    """Collect every child that has exited, without waiting for those that have not."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def descendants(root: int) -> dict[int, str]:
    """{pid: start time} of every descendant of `root` (the start time tells a reused pid)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(entry)
        if fields is not None:
            pid = int(entry.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            started[pid] = fields[19]
    found: dict[int, str] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid not in found and pid in started:
            found[pid] = started[pid]
            stack.extend(children.get(pid, []))
    return found


def is_running(pid: int, started: str) -> bool:
    """The process that had this start time still exists and is not a zombie."""
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    return fields is not None and fields[19] == started and fields[0] not in ("Z", "X")


def _is_frozen(pid: int, started: str) -> bool:
    """Stopped, or no longer there: it can do nothing until it is killed."""
    fields = stat_fields(Path(f"/proc/{pid}/stat"))
    return fields is None or fields[19] != started or fields[0] in ("T", "t", "Z", "X")


def stat_fields(path: Path) -> list[str] | None:
    """The fields of a /proc/<pid>/stat (or .../task/<tid>/stat) after the command name, which may
    hold spaces and parentheses: state, ppid, pgrp...; None once the process is gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, number)


def _signal_group(leader: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, number)
