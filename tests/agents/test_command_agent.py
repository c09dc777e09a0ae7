"""The command agent with small Python scripts standing in for a coding-agent CLI."""

from __future__ import annotations

import shlex
import sys
import textwrap
import time
from pathlib import Path

import pytest

from shared.protocol import AgentUsage
from tests.agents.conftest import CHILD_SOURCE, PARENT_SOURCE
from worker.agents.base import AgentError, Proposal, ProposalContext
from worker.agents.command import CommandAgent

PROGRAM = Path(sys.executable).name


def cli(tmp_path: Path, body: str) -> str:
    """A command line that runs `body` as a Python script, the way a coding-agent CLI would be run."""
    script = tmp_path / "fake_cli.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def make_agent(tmp_path: Path, command: str, *, timeout_s: float = 60.0) -> CommandAgent:
    return CommandAgent(command=command, timeout_s=timeout_s, workspace_root=tmp_path / "workspaces")


EDIT_LEARNING_RATE = """
    from pathlib import Path
    train = Path("train.py")
    train.write_text(train.read_text().replace("LEARNING_RATE = 0.01", "LEARNING_RATE = 0.02"))
"""


def test_a_good_edit_comes_back_with_the_hypothesis_from_hypothesis_txt(
    tmp_path: Path, context: ProposalContext
) -> None:
    seen = tmp_path / "seen"
    command = cli(
        tmp_path,
        f"""
    import shutil
    shutil.copytree(".", {str(seen)!r})
"""
        + EDIT_LEARNING_RATE
        + """
    Path("hypothesis.txt").write_text("\\n  Double the learning rate to 0.02  \\nmore detail\\n")
""",
    )
    agent = make_agent(tmp_path, command)

    proposal = agent.propose(context)

    assert proposal == Proposal(
        source=CHILD_SOURCE,
        hypothesis="Double the learning rate to 0.02",
        usage=AgentUsage(agent="command", model=PROGRAM),
    )
    assert (seen / "train.py").read_text() == PARENT_SOURCE
    program = (seen / "program.md").read_text()
    assert program.startswith(context.brief)
    assert "Write your one-line hypothesis (under 200 characters) to `hypothesis.txt`" in program
    log = (seen / "research_log.md").read_text()
    assert "rejected    +0.0100  Use a cosine learning-rate decay to zero" in log
    assert "1. Double the batch size to 16\n2. Add an output head bias" in log
    assert "1. bbbbbbbbbb val_bpb 1.3000 (-0.0500 vs baseline)  Double the batch size to 16" in log
    assert "gpu-3 (bo)" not in log
    assert list((tmp_path / "workspaces").iterdir()) == []  # the scratch workspace is gone


def test_the_hypothesis_falls_back_to_a_stdout_line(tmp_path: Path, context: ProposalContext) -> None:
    command = cli(
        tmp_path, EDIT_LEARNING_RATE + '\n    print("working...")\n    print("HYPOTHESIS: Double LR")\n'
    )

    proposal = make_agent(tmp_path, command).propose(context)

    assert proposal.hypothesis == "Double LR"


def test_without_any_hypothesis_the_edit_is_described_by_its_size(
    tmp_path: Path, context: ProposalContext
) -> None:
    proposal = make_agent(tmp_path, cli(tmp_path, EDIT_LEARNING_RATE)).propose(context)

    assert proposal.source == CHILD_SOURCE
    assert proposal.hypothesis == f"edit by {PROGRAM}: 1 line changed"


def test_a_command_that_overruns_is_killed_with_its_helpers(tmp_path: Path, context: ProposalContext) -> None:
    pids = tmp_path / "pids.txt"
    command = cli(
        tmp_path,
        f"""
    import os, subprocess, sys, time
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open({str(pids)!r}, "w") as handle:
        handle.write(f"{{os.getpid()}} {{helper.pid}}")
    time.sleep(300)
""",
    )
    agent = make_agent(tmp_path, command, timeout_s=2)

    with pytest.raises(AgentError, match=r"^agent command timed out after 2s$"):
        agent.propose(context)

    for pid in map(int, pids.read_text().split()):
        assert wait_until_gone(pid), f"process {pid} outlived the timeout"
    assert list((tmp_path / "workspaces").iterdir()) == []


def test_an_unchanged_train_py_is_refused(tmp_path: Path, context: ProposalContext) -> None:
    command = cli(tmp_path, 'print("HYPOTHESIS: nothing to do")\n')

    with pytest.raises(AgentError, match=r"^the agent left train.py unchanged$"):
        make_agent(tmp_path, command).propose(context)


def test_a_failing_command_reports_its_exit_status_and_stderr_tail(
    tmp_path: Path, context: ProposalContext
) -> None:
    command = cli(
        tmp_path,
        """
    import sys
    print("starting", file=sys.stderr)
    print("error: no credentials configured", file=sys.stderr)
    sys.exit(3)
""",
    )

    with pytest.raises(AgentError) as raised:
        make_agent(tmp_path, command).propose(context)

    assert (
        str(raised.value) == "agent command exited with status 3: starting | error: no credentials configured"
    )


def test_a_missing_program_is_a_clear_error(tmp_path: Path, context: ProposalContext) -> None:
    agent = make_agent(tmp_path, "no-such-coding-agent --yes")

    with pytest.raises(AgentError, match=r"^could not start the agent command 'no-such-coding-agent': "):
        agent.propose(context)


def test_revise_starts_from_the_refused_file_and_says_why_it_was_refused(
    tmp_path: Path, context: ProposalContext
) -> None:
    seen = tmp_path / "seen"
    refused = PARENT_SOURCE.replace("import torch", "import torch\nimport os")
    command = cli(
        tmp_path,
        f"""
    import shutil
    from pathlib import Path
    shutil.copytree(".", {str(seen)!r})
    Path("train.py").write_text({CHILD_SOURCE!r})
""",
    )

    proposal = make_agent(tmp_path, command).revise(
        context, Proposal(source=refused, hypothesis="Use os"), "the static policy refused train.py: `os`"
    )

    assert proposal.source == CHILD_SOURCE
    assert (seen / "train.py").read_text() == refused
    assert (
        "It was refused before training: the static policy refused train.py: `os`"
        in (seen / "program.md").read_text()
    )


def test_an_empty_command_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match=r"^agent 'command' needs a command to run$"):
        CommandAgent(command="  ", timeout_s=1, workspace_root=tmp_path)


def wait_until_gone(pid: int, *, within_s: float = 10.0) -> bool:
    """Whether `pid` stops running (exits, or is only a zombie awaiting its reaper) within `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
