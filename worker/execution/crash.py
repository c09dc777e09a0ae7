"""A crash, said in one bounded line that carries the variant's own traceback and little else.

A crash reason leaves the machine (it is signed into the report, and agents read it in the
research log), so it must not be a channel for the volunteer's data: a variant that reads a file
and raises with its text in the message would otherwise publish it. The line keeps what a
researcher needs to find the bug, and drops what could carry data:

    train() raised RuntimeError at train.py:88 in forward <- train.py:140 in train: mat1 and mat2
    shapes cannot be multiplied (64x128 and 256x512)

- the exception's class name, and the variant's own frames (file name, line, function), innermost
  first, at most three: library frames and paths of this machine are left out;
- the message's first line, with quoted text longer than a short word replaced by `'…'` and
  absolute paths cut to their last part;
- at most MAX_REASON_CHARS characters in all.

The whole traceback stays in the run's local log for whoever runs the variant.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

MAX_REASON_CHARS = 300
MAX_MESSAGE_CHARS = 160
MAX_FRAMES = 3
QUOTED_KEEP = 16  # quoted text up to this long is a word or a name; longer may be data
_QUOTED = re.compile(r"""(['"])(.*?)\1""")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/:]+/)+([^\s'\":/]*)")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def crash_parts(what: str, exc: BaseException, *, variant_file: Path) -> dict[str, object]:
    """The crash as fields the supervisor checks one by one before any of it leaves the machine
    (worker.execution.reasons): what raised, the exception's class and where it was defined, and
    the line numbers of the variant's own frames, innermost first."""
    kind = type(exc)
    target = str(variant_file.resolve())
    lines = [f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == target]
    return {
        "what": what,
        "exception": kind.__name__[:60],
        "module": str(getattr(kind, "__module__", ""))[:60],
        "lines": [n for n in lines if isinstance(n, int)][:MAX_FRAMES],
    }


def crash_reason(what: str, exc: BaseException, *, variant_file: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.]", "", type(exc).__name__)[:60] or "Exception"
    frames = _variant_frames(exc, variant_file)
    where = f" at {' <- '.join(frames)}" if frames else ""
    message = scrub_message(str(exc))
    reason = f"{what} {name}{where}" + (f": {message}" if message else "")
    return reason[:MAX_REASON_CHARS]


def scrub_message(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = _PRINTABLE.sub("?", lines[-1] if len(lines) > 1 and lines[0].startswith("Traceback") else lines[0])
    line = _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "/", line)
    line = _QUOTED.sub(
        lambda m: m.group(0) if len(m.group(2)) <= QUOTED_KEEP else f"{m.group(1)}…{m.group(1)}", line
    )
    return line[:MAX_MESSAGE_CHARS]


def _variant_frames(exc: BaseException, variant_file: Path) -> list[str]:
    target = str(variant_file.resolve())
    found = []
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == target:
            found.append(f"{variant_file.name}:{frame.lineno} in {frame.name}")
            if len(found) == MAX_FRAMES:
                break
    return found
