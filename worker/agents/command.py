"""The `command` agent: runs any coding-agent CLI in a scratch workspace and takes back train.py.

The workspace holds train.py (the parent), program.md (the track brief, the contract rules and
how to hand back the result) and research_log.md (the log digest, the leaderboard's top entries
and the parent's lineage). The command is split with shlex (no shell), runs with the workspace as
its working directory and its own process group, and is killed with that whole group when it
overruns `timeout_s`, so a CLI's helper processes die with it.

The hypothesis comes from, in order: the first non-empty line of `hypothesis.txt` in the
workspace; the first stdout line starting with `HYPOTHESIS:`; else "edit by <command>: <n> lines
changed".

The CLI is software the volunteer chose and configured; it runs with the worker's environment
(it needs its own credentials) and is not sandboxed. Only train.py comes back from it, and that
file passes the same checks and sandbox as any other variant.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from shared.protocol import AgentUsage
from worker.agents.base import AgentError, Proposal, ProposalContext
from worker.agents.prompting import (
    HYPOTHESIS_MAX_CHARS,
    VARIANT_RULES,
    leaderboard_text,
    lineage_text,
    one_line,
    research_log_digest,
)

HYPOTHESIS_FILE = "hypothesis.txt"
STDOUT_HYPOTHESIS_PREFIX = "HYPOTHESIS:"
_STDERR_TAIL_LINES = 8
_STDERR_TAIL_CHARS = 800
_REAP_TIMEOUT_S = 10.0

_HANDBACK = f"""\
## How to hand back your experiment

- Edit `train.py` in this directory in place; it is the only file taken back.
- Write your one-line hypothesis (under {HYPOTHESIS_MAX_CHARS} characters) to `{HYPOTHESIS_FILE}`,
  or print a line starting with `{STDOUT_HYPOTHESIS_PREFIX}`.
- `research_log.md` lists what has been tried on this track and the lineage of this train.py.
- Do not run training here: the worker trains the file afterwards, under the harness.
"""


class CommandAgent:
    """Proposes variants by running `command` (for example a coding-agent CLI in one-shot mode)."""

    name = "command"

    def __init__(
        self, *, command: str, timeout_s: float = 1800.0, workspace_root: Path | None = None
    ) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise AgentError("agent 'command' needs a command to run")
        self.timeout_s = timeout_s
        self.workspace_root = workspace_root

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name

    def propose(self, context: ProposalContext) -> Proposal:
        return self._run(context, start_source=context.parent_source, refusal=None)

    def revise(self, context: ProposalContext, previous: Proposal, reason: str) -> Proposal:
        """Run the command again on the refused file, with the reason written into program.md."""
        return self._run(context, start_source=previous.source, refusal=reason)

    def _run(self, context: ProposalContext, *, start_source: str, refusal: str | None) -> Proposal:
        if self.workspace_root is not None:
            self.workspace_root.mkdir(parents=True, exist_ok=True)
        workspace = Path(tempfile.mkdtemp(prefix="proposal-", dir=self.workspace_root))
        try:
            _prepare_workspace(workspace, context, start_source=start_source, refusal=refusal)
            stdout = self._execute(workspace)
            source = _read_train_py(workspace)
            if source == start_source:
                raise AgentError("the agent left train.py unchanged")
            hypothesis = _hypothesis(workspace, stdout) or self._fallback_hypothesis(start_source, source)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        return Proposal(
            source=source,
            hypothesis=one_line(hypothesis, limit=HYPOTHESIS_MAX_CHARS),
            usage=AgentUsage(agent=self.name, model=self.program),
        )

    def _fallback_hypothesis(self, before: str, after: str) -> str:
        changed = _changed_lines(before, after)
        return f"edit by {self.program}: {changed} {'line' if changed == 1 else 'lines'} changed"

    def _execute(self, workspace: Path) -> str:
        try:
            process = subprocess.Popen(
                self.argv,
                cwd=workspace,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, so a timeout can kill all of it
            )
        except OSError as exc:
            raise AgentError(
                f"could not start the agent command {self.argv[0]!r}: {exc.strerror or exc}"
            ) from exc
        try:
            out, err = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            # A helper that left the group may still hold the pipes; the command itself is dead.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=_REAP_TIMEOUT_S)
            raise AgentError(f"agent command timed out after {self.timeout_s:g}s") from None
        finally:
            # Helpers the command left running in its group would outlive it otherwise.
            _kill_group(process.pid)
        if process.returncode != 0:
            raise AgentError(f"agent command {_exit_description(process.returncode)}: {_tail(err)}")
        return out.decode("utf-8", errors="replace")


def _prepare_workspace(
    workspace: Path, context: ProposalContext, *, start_source: str, refusal: str | None
) -> None:
    # Bytes, not text mode, so the file the agent starts from is exactly the source it is compared to.
    (workspace / "train.py").write_bytes(start_source.encode("utf-8"))
    program = [context.brief.strip(), "", "## Rules of this network", "", VARIANT_RULES, "", _HANDBACK]
    if refusal is not None:
        program += [
            "## Your previous attempt was refused",
            "",
            f"train.py holds that attempt. It was refused before training: {refusal}",
            "Fix it.",
            "",
        ]
    (workspace / "program.md").write_text("\n".join(program), encoding="utf-8")
    log = [
        "# Research log",
        "",
        research_log_digest(context.research_log),
        "",
        "# Leaderboard",
        "",
        leaderboard_text(context.leaderboard),
        "",
        "# Lineage of train.py",
        "",
        lineage_text(context.lineage_hypotheses),
        "",
    ]
    (workspace / "research_log.md").write_text("\n".join(log), encoding="utf-8")


def _read_train_py(workspace: Path) -> str:
    try:
        return (workspace / "train.py").read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise AgentError("the agent removed train.py") from None
    except UnicodeDecodeError as exc:
        raise AgentError(f"the agent left train.py that is not UTF-8 text: {exc}") from None


def _hypothesis(workspace: Path, stdout: str) -> str | None:
    path = workspace / HYPOTHESIS_FILE
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                return line.strip()
    for line in stdout.splitlines():
        if line.startswith(STDOUT_HYPOTHESIS_PREFIX):
            text = line.removeprefix(STDOUT_HYPOTHESIS_PREFIX).strip()
            if text:
                return text
    return None


def _changed_lines(before: str, after: str) -> int:
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    return sum(
        max(end_a - start_a, end_b - start_b)
        for tag, start_a, end_a, start_b, end_b in matcher.get_opcodes()
        if tag != "equal"
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(pid, signal.SIGKILL)


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _tail(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        return "(no output on stderr)"
    tail = " | ".join(line.strip() for line in lines[-_STDERR_TAIL_LINES:])
    return tail if len(tail) <= _STDERR_TAIL_CHARS else "…" + tail[-_STDERR_TAIL_CHARS:]
