"""Framing for the pipes between the supervisor, the scorer and the variant's host process.

Every message is one JSON object on one line; bulk bytes (the val shard, held-out windows) follow
a header line that gives their length. A reader never trusts a length or a line it did not
bound: lines are capped at `max_line` bytes, and a longer one is an error, not a bigger buffer.
Standard library only.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any

MAX_LINE_BYTES = 64 * 1024
READ_CHUNK = 1 << 16


class ChannelError(Exception):
    """The other end broke the framing, closed the pipe, or went silent past a deadline."""


class ChannelClosed(ChannelError):
    """End of file: the other end closed its side (or exited)."""


class ChannelTimeout(ChannelError):
    """Nothing (or not enough) arrived before the deadline."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode("utf-8") + b"\n"


def write_message(fd: int, message: dict[str, Any], payload: bytes = b"") -> None:
    """Write one line (and `payload` after it) in full; blocking."""
    write_all(fd, encode(message) + payload)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LineReader:
    """Bounded JSON lines from a pipe, with a deadline on each read."""

    def __init__(self, fd: int, *, max_line: int = MAX_LINE_BYTES) -> None:
        self.fd = fd
        self._max_line = max_line
        self._buffer = bytearray()
        self.closed = False

    def read_message(self, timeout_s: float | None) -> dict[str, Any]:
        """The next message; raises ChannelTimeout, ChannelClosed or ChannelError (bad line)."""
        line = self.read_line(timeout_s)
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ChannelError(f"not a JSON line: {line[:80]!r}") from exc
        if not isinstance(message, dict):
            raise ChannelError(f"not a JSON object: {line[:80]!r}")
        return message

    def read_line(self, timeout_s: float | None) -> bytes:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line
            if len(self._buffer) > self._max_line:
                raise ChannelError(f"a line longer than {self._max_line} bytes")
            self._fill(deadline)

    def read_exact(self, count: int, timeout_s: float | None) -> bytes:
        """`count` bytes following the last line read."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while len(self._buffer) < count:
            self._fill(deadline, want=count - len(self._buffer))
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def poll_lines(self) -> list[bytes]:
        """Every complete line readable now, without waiting; [] at EOF (see `closed`)."""
        while not self.closed and select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, READ_CHUNK)
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
            if len(self._buffer) > 16 * self._max_line:
                break  # a flood: hand back what is complete, read the rest on the next call
        lines = []
        while (newline := self._buffer.find(b"\n")) >= 0:
            lines.append(bytes(self._buffer[:newline]))
            del self._buffer[: newline + 1]
        if len(self._buffer) > self._max_line:
            self._buffer.clear()  # an unterminated flood is dropped, never buffered without bound
            lines.append(b"")
        return lines

    def _fill(self, deadline: float | None, want: int = READ_CHUNK) -> None:
        if self.closed:
            raise ChannelClosed("the other end closed the pipe")
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([self.fd], [], [], wait)[0]:
            raise ChannelTimeout("nothing arrived in time")
        chunk = os.read(self.fd, max(want, READ_CHUNK) if want < (1 << 24) else 1 << 24)
        if not chunk:
            self.closed = True
            raise ChannelClosed("the other end closed the pipe")
        self._buffer += chunk
