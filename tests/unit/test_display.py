"""What the daemon shows: plain timestamped lines off a terminal, a live dashboard on one."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from rich.console import Console

from shared.protocol import Lease, LeaseKind, VariantRef
from worker.display import LiveDisplay, PlainDisplay, ResultRow, make_display

LEASE = Lease(
    id="0123456789abcdef",
    kind=LeaseKind.explore,
    track_id="cpu-tiny",
    variant=VariantRef(hash="ab" * 32, track_id="cpu-tiny", source="", signature=""),
    seed=42,
    deadline=datetime(2026, 1, 1, tzinfo=UTC),
    heartbeat_interval_s=10,
    time_budget_s=60,
)
ROW = ResultRow(
    kind="explore", track_id="cpu-tiny", variant_hash="cd" * 32, status="ok", val_bpb=1.23456,
    outcome="candidate", hypothesis="LR 0.004 -> 0.005",
)  # fmt: skip


def drive(display: PlainDisplay | LiveDisplay) -> None:
    display.lease_started(LEASE)
    display.agent_status("offline is proposing")
    display.training_started(variant_hash="cd" * 32, time_budget_s=60)
    display.training_progress(step=10, loss=3.5, elapsed_s=40.0, time_budget_s=60)
    display.warning("heartbeat failed")
    display.run_finished(ROW)
    display.close("worker stopped: 1 leases")


def test_plain_lines_are_timestamped_one_per_event() -> None:
    out = io.StringIO()
    drive(PlainDisplay(out))

    lines = [re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", line) for line in out.getvalue().splitlines()]
    assert lines == [
        "lease 01234567: explore ababababab on cpu-tiny (seed 42, budget 60s)",
        "agent: offline is proposing",
        "training cdcdcdcdcd for 60s",
        "WARNING heartbeat failed",
        "explore cdcdcdcdcd ok, val_bpb 1.2346 -> candidate (LR 0.004 -> 0.005)",
        "worker stopped: 1 leases",
    ]


def test_quiet_plain_output_keeps_key_events_only() -> None:
    out = io.StringIO()
    drive(PlainDisplay(out, verbose=False))

    assert "agent:" not in out.getvalue()
    assert len(out.getvalue().splitlines()) == 5


def test_the_live_dashboard_shows_the_lease_progress_and_results() -> None:
    out = io.StringIO()
    display = LiveDisplay(Console(file=out, force_terminal=True, width=160))
    display.lease_started(LEASE)
    display.training_started(variant_hash="cd" * 32, time_budget_s=60)
    display.training_progress(step=10, loss=3.5, elapsed_s=40.0, time_budget_s=60)
    frame = out.getvalue()
    display.run_finished(ROW)
    display.close("worker stopped: 1 leases")

    assert "explore ababababab on cpu-tiny" in frame
    assert "step 10" in frame and "loss 3.5000" in frame and "20s left" in frame
    assert "LR 0.004 -> 0.005" in out.getvalue()
    assert "worker stopped: 1 leases" in out.getvalue()


def test_plain_output_is_chosen_off_a_terminal_or_when_quiet() -> None:
    assert isinstance(make_display(stream=io.StringIO()), PlainDisplay)
