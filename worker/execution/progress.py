"""Progress events as JSON lines on a private pipe inherited from the runner.

Not stdout: the variant shares stdout and could print anything there. The pipe's fd number is
not offered to the variant through its context.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import torch

# At most this many progress events a second; train_started/train_finished/eval_finished always go.
MAX_PROGRESS_PER_S = 4.0


class ProgressChannel:
    """Writes events to `fd`, or nowhere when `fd` is None (a harness run by hand)."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._last_progress_at = -math.inf
        self._pending: tuple[int, float | torch.Tensor, float] | None = None

    def emit(self, event: str, **fields: Any) -> None:
        if self._fd is None:
            return
        line = json.dumps({"event": event, **fields}, allow_nan=False) + "\n"
        try:
            # One write per line, well under PIPE_BUF, so a line is never interleaved or torn.
            os.write(self._fd, line.encode("utf-8"))
        except OSError:
            # The runner is gone; training goes on and the result file still gets written.
            self._fd = None

    def progress(self, *, step: int, loss: float | torch.Tensor, elapsed_s: float) -> None:
        """Note the latest step; send it unless one went out less than 1/MAX_PROGRESS_PER_S ago."""
        self._pending = (step, loss, elapsed_s)
        if time.monotonic() - self._last_progress_at >= 1.0 / MAX_PROGRESS_PER_S:
            self.flush_progress()

    def flush_progress(self) -> None:
        """Send the latest noted step, if it has not gone out yet."""
        if self._pending is None:
            return
        step, loss, elapsed_s = self._pending
        self._pending = None
        self._last_progress_at = time.monotonic()
        # float() of a CUDA tensor waits for the GPU, so it happens here, at most a few times a second.
        value = float(loss)
        self.emit(
            "progress",
            step=step,
            loss=value if math.isfinite(value) else None,
            elapsed_s=round(elapsed_s, 3),
        )
