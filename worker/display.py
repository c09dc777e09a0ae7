"""What the daemon shows: a live dashboard on a terminal, one line per event anywhere else.

The daemon calls only the `Display` methods below, so how things look never leaks into the loop.
`PlainDisplay` is what logs, CI and tests read: one timestamped line per event, flushed at once
(a supervisor tailing the file sees it immediately). Every line that starts training contains
the word "training". `LiveDisplay` draws the same information with rich, for a person watching.
Both may be called from the heartbeat thread as well as the main one.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TextIO

from rich.console import Console, Group
from rich.filesize import decimal as file_size
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from shared.hashing import short_hash
from shared.protocol import Lease

PLAIN_PROGRESS_EVERY_S = 30.0  # a training or download progress line at most this often in plain mode
LIVE_DOWNLOAD_REDRAW_S = 0.25  # a chunk arrives far more often than a person can read
RESULTS_SHOWN = 8


@dataclass(frozen=True)
class ResultRow:
    """One finished lease, as shown to the volunteer."""

    kind: str
    track_id: str
    variant_hash: str
    status: str  # the run's status: ok, crashed, rejected
    val_bpb: float | None
    outcome: str  # what the coordinator made of it (variant status), or where the report waits
    hypothesis: str | None = None

    def line(self) -> str:
        bpb = f"val_bpb {self.val_bpb:.4f}" if self.val_bpb is not None else "no val_bpb"
        hypothesis = f" ({self.hypothesis})" if self.hypothesis else ""
        return (
            f"{self.kind} {short_hash(self.variant_hash)} {self.status}, {bpb} -> {self.outcome}{hypothesis}"
        )


@dataclass
class Transfer:
    """One download as the plain display reports it: how far, how fast, how long left."""

    label: str
    first: int  # bytes already there when this attempt began (a resumed download)
    total: int | None
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self, now: float | None = None) -> float | None:
        """Bytes per second over this attempt; None before any time has passed."""
        elapsed = (now if now is not None else time.monotonic()) - self.started
        return (self.done - self.first) / elapsed if elapsed > 0 else None

    def describe(self, now: float | None = None) -> str:
        """e.g. "312.0 MB of 1.2 GB, 45.3 MB/s, 0:00:21 left"."""
        rate = self.rate(now)
        parts = [file_size(self.done) + (f" of {file_size(self.total)}" if self.total else "")]
        if rate:
            parts.append(f"{file_size(int(rate))}/s")
            if self.total:
                parts.append(f"{timedelta(seconds=round(max(0, self.total - self.done) / rate))} left")
        return ", ".join(parts)


class Display(Protocol):
    def event(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def lease_started(self, lease: Lease) -> None: ...

    def agent_status(self, text: str) -> None: ...

    def training_started(self, *, variant_hash: str, time_budget_s: float) -> None: ...

    def training_progress(
        self, *, step: int | None, loss: float | None, elapsed_s: float, time_budget_s: float | None
    ) -> None: ...

    def run_finished(self, row: ResultRow) -> None: ...

    def download_started(self, *, label: str, done: int, total: int | None) -> None: ...

    def download_advanced(self, *, done: int, total: int | None) -> None: ...

    def download_finished(self, *, label: str, ok: bool) -> None: ...

    def close(self, summary: str) -> None: ...


def _describe_lease(lease: Lease) -> str:
    return (
        f"lease {lease.id[:8]}: {lease.kind.value} {short_hash(lease.variant.hash)} on {lease.track_id}"
        f" (seed {lease.seed}, budget {lease.time_budget_s:g}s)"
    )


class PlainDisplay:
    """One timestamped line per event. `verbose` adds agent status and periodic progress lines."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = True) -> None:
        self._stream = stream or sys.stdout
        self._verbose = verbose
        self._lock = threading.RLock()  # re-entrant: a signal handler may print while a line is being written
        self._last_progress = 0.0
        self._transfer: Transfer | None = None
        self._last_transfer_line = 0.0

    def _line(self, text: str) -> None:
        with self._lock:
            self._stream.write(f"{datetime.now():%Y-%m-%d %H:%M:%S} {text}\n")
            self._stream.flush()

    def event(self, message: str) -> None:
        self._line(message)

    def warning(self, message: str) -> None:
        self._line(f"WARNING {message}")

    def lease_started(self, lease: Lease) -> None:
        self._line(_describe_lease(lease))

    def agent_status(self, text: str) -> None:
        if self._verbose:
            self._line(f"agent: {text}")

    def training_started(self, *, variant_hash: str, time_budget_s: float) -> None:
        self._last_progress = time.monotonic()
        self._line(f"training {short_hash(variant_hash)} for {time_budget_s:g}s")

    def training_progress(
        self, *, step: int | None, loss: float | None, elapsed_s: float, time_budget_s: float | None
    ) -> None:
        now = time.monotonic()
        if not self._verbose or now - self._last_progress < PLAIN_PROGRESS_EVERY_S:
            return
        self._last_progress = now
        loss_text = f" loss {loss:.4f}" if loss is not None else ""
        self._line(f"  step {step if step is not None else '-'}{loss_text}, {elapsed_s:.0f}s elapsed")

    def run_finished(self, row: ResultRow) -> None:
        self._line(row.line())

    def download_started(self, *, label: str, done: int, total: int | None) -> None:
        self._transfer = Transfer(label=label, first=done, total=total, done=done)
        self._last_transfer_line = time.monotonic()
        if self._verbose:
            size = f" ({file_size(total)})" if total else ""
            resuming = f", resuming at {file_size(done)}" if done else ""
            self._line(f"downloading {label}{size}{resuming}")

    def download_advanced(self, *, done: int, total: int | None) -> None:
        transfer = self._transfer
        if transfer is None:
            return
        transfer.done, transfer.total = done, total
        now = time.monotonic()
        if self._verbose and now - self._last_transfer_line >= PLAIN_PROGRESS_EVERY_S:
            self._last_transfer_line = now
            self._line(f"  {transfer.describe(now)}")

    def download_finished(self, *, label: str, ok: bool) -> None:
        transfer, self._transfer = self._transfer, None
        if ok and self._verbose and transfer is not None:
            rate = transfer.rate()
            speed = f", {file_size(int(rate))}/s" if rate else ""
            elapsed = timedelta(seconds=round(time.monotonic() - transfer.started))
            self._line(f"downloaded {label}: {file_size(transfer.done - transfer.first)} in {elapsed}{speed}")

    def close(self, summary: str) -> None:
        self._line(summary)


class LiveDisplay:
    """A rich dashboard: current lease, agent status, a training bar and the latest results.

    Nothing is drawn until the first call, so a display that is built and never used (the CLI
    failed before the daemon started) leaves the terminal untouched.
    """

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        self._lease = Text("waiting for work", style="dim")
        self._agent = Text("")
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            console=self._console,
            auto_refresh=False,
        )
        self._task = self._progress.add_task("idle", total=1.0, completed=0, detail="", visible=False)
        self._downloads = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            auto_refresh=False,
        )
        self._download = self._downloads.add_task("download", total=None, visible=False)
        self._last_download_redraw = 0.0
        self._results: deque[ResultRow] = deque(maxlen=RESULTS_SHOWN)
        self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=False)

    def _render(self) -> Group:
        table = Table(title="latest results", expand=True, show_edge=False)
        for column in ("kind", "variant", "status", "val_bpb", "outcome", "hypothesis"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        for row in reversed(self._results):
            table.add_row(
                row.kind,
                short_hash(row.variant_hash),
                row.status,
                f"{row.val_bpb:.4f}" if row.val_bpb is not None else "-",
                row.outcome,
                row.hypothesis or "",
            )
        return Group(self._lease, self._agent, self._progress, self._downloads, table)

    def _refresh(self) -> None:
        if not self._live.is_started:
            self._live.start()
        self._live.update(self._render(), refresh=True)

    def _print(self, text: Text) -> None:
        if not self._live.is_started:
            self._live.start()
        self._live.console.print(text)

    def event(self, message: str) -> None:
        self._print(Text(message))

    def warning(self, message: str) -> None:
        self._print(Text(f"warning: {message}", style="yellow"))

    def lease_started(self, lease: Lease) -> None:
        self._lease = Text(_describe_lease(lease), style="bold")
        self._agent = Text("")
        self._progress.update(self._task, visible=False)
        self._refresh()

    def agent_status(self, text: str) -> None:
        self._agent = Text(f"agent: {text}", style="cyan")
        self._refresh()

    def training_started(self, *, variant_hash: str, time_budget_s: float) -> None:
        self._progress.update(
            self._task,
            description=f"training {short_hash(variant_hash)}",
            total=time_budget_s,
            completed=0.0,
            detail="starting",
            visible=True,
        )
        self._refresh()

    def training_progress(
        self, *, step: int | None, loss: float | None, elapsed_s: float, time_budget_s: float | None
    ) -> None:
        budget = time_budget_s or 0.0
        parts = [
            f"step {step}" if step is not None else "",
            f"loss {loss:.4f}" if loss is not None else "",
            f"{max(0.0, budget - elapsed_s):.0f}s left" if budget else f"{elapsed_s:.0f}s",
        ]
        self._progress.update(
            self._task,
            completed=min(elapsed_s, budget) if budget else 0.0,
            detail="  ".join(p for p in parts if p),
        )
        self._refresh()

    def run_finished(self, row: ResultRow) -> None:
        self._results.append(row)
        self._lease = Text("waiting for work", style="dim")
        self._progress.update(self._task, visible=False)
        self._refresh()

    def download_started(self, *, label: str, done: int, total: int | None) -> None:
        # A reset, not an update: a resumed download's speed counts from where it resumed.
        self._downloads.reset(
            self._download, total=total, completed=done, description=f"downloading {label}", visible=True
        )
        self._last_download_redraw = time.monotonic()
        self._refresh()

    def download_advanced(self, *, done: int, total: int | None) -> None:
        self._downloads.update(self._download, completed=done, total=total)
        now = time.monotonic()
        if now - self._last_download_redraw >= LIVE_DOWNLOAD_REDRAW_S:
            self._last_download_redraw = now
            self._refresh()

    def download_finished(self, *, label: str, ok: bool) -> None:
        self._downloads.update(self._download, visible=False)
        if ok:
            self._print(Text(f"downloaded {label}"))
        self._refresh()

    def close(self, summary: str) -> None:
        if self._live.is_started:
            self._live.stop()
        self._console.print(Text(summary))


def make_display(*, quiet: bool = False, stream: TextIO | None = None) -> Display:
    """The live dashboard on an interactive terminal (unless quiet), plain lines otherwise."""
    stream = stream or sys.stdout
    if not quiet and stream.isatty():
        return LiveDisplay(Console(file=stream))
    return PlainDisplay(stream, verbose=not quiet)
