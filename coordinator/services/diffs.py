"""A variant's change against its parent, as a unified diff split into styled lines."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

Kind = Literal["added", "removed", "hunk", "file", "context"]


@dataclass(frozen=True)
class DiffLine:
    kind: Kind
    text: str


def _kind(line: str) -> Kind:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "added"
    if line.startswith("-"):
        return "removed"
    return "context"


def unified_diff(parent: str, child: str, *, parent_name: str, child_name: str, context: int = 3) -> list[DiffLine]:
    lines = difflib.unified_diff(
        parent.splitlines(), child.splitlines(), fromfile=parent_name, tofile=child_name, n=context, lineterm=""
    )
    return [DiffLine(kind=_kind(line), text=line) for line in lines]
