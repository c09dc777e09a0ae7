"""What the tests ask of a process they started: whether it still runs."""

from __future__ import annotations

from pathlib import Path


def process_is_gone(pid: int) -> bool:
    """Gone, or a zombie left for init to reap: either way it no longer runs."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")
