"""`worker status`: what the daemon publishes in its home, and how a reader judges it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.protocol import Lease, LeaseKind, VariantRef
from worker.cli import app
from worker.status import (
    STALE_AFTER_S,
    STATUS_FILE,
    StatusBoard,
    StatusReport,
    WorkerStatus,
    read_status,
)

START = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def lease(kind: LeaseKind = LeaseKind.explore, *, paired: bool = False) -> Lease:
    ref = VariantRef(hash="ab" * 32, track_id="cpu-tiny", source="def train(ctx): ...\n", signature="s")
    return Lease(
        id="lease-0123456789", kind=kind, track_id="cpu-tiny", variant=ref, control=ref if paired else None,
        seed=7, deadline=START + timedelta(minutes=10), heartbeat_interval_s=10.0, time_budget_s=60.0,
    )  # fmt: skip


def published(home: Path) -> WorkerStatus:
    return WorkerStatus.model_validate_json((home / STATUS_FILE).read_bytes())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def board(tmp_path: Path, clock: Clock) -> Iterator[StatusBoard]:
    board = StatusBoard(tmp_path / STATUS_FILE, clock=clock)
    board.start(coordinator="http://coordinator.test", hardware_class="cpu", agent="offline")
    yield board
    board.stopped()


def test_a_starting_worker_publishes_its_pid_and_state_at_once(tmp_path: Path, board: StatusBoard) -> None:
    status = published(tmp_path)

    assert (status.pid, status.slots[0].state, status.coordinator) == (os.getpid(), "starting", "http://coordinator.test")
    assert status.device == "cpu" and status.today.day.isoformat() == "2026-12-02"
    assert not [p.name for p in tmp_path.iterdir() if p.name != STATUS_FILE]  # no temporary file left


def test_an_explore_lease_is_training_with_its_step_loss_and_eta(
    tmp_path: Path, board: StatusBoard, clock: Clock
) -> None:
    board.lease_started(lease(LeaseKind.explore, paired=True))
    board.phase("agent")
    assert published(tmp_path).slots[0].progress.phase == "agent"  # type: ignore[union-attr]

    with board.training(run="control", time_budget_s=60.0):
        clock.advance(20)
        board.progress(phase="training", step=42, loss=3.5, elapsed_s=20.0, time_budget_s=60.0)
        slot = published(tmp_path).slots[0]

    assert (slot.state, slot.lease.kind, slot.lease.variant, slot.lease.id) == (  # type: ignore[union-attr]
        "training", "explore", "ababababab", "lease-0123456789",
    )  # fmt: skip
    progress = slot.progress
    assert progress is not None
    assert (progress.step, progress.loss, progress.run, progress.runs_left) == (42, 3.5, "control", 1)
    # 40 s left of this training, then the variant's 60 s.
    assert progress.eta == clock.now + timedelta(seconds=100)


def test_a_verify_or_calibrate_lease_is_verifying(tmp_path: Path, board: StatusBoard) -> None:
    board.lease_started(lease(LeaseKind.calibrate))

    assert published(tmp_path).slots[0].state == "verifying"


def test_idle_paused_and_waiting_say_why_and_until_when(tmp_path: Path, board: StatusBoard, clock: Clock) -> None:
    board.idle(retry_after_s=5)
    slot = published(tmp_path).slots[0]
    assert (slot.state, slot.reason, slot.until) == ("idle", "no work offered", clock.now + timedelta(seconds=5))

    board.paused("the GPU is busy", until=clock.now + timedelta(hours=1))
    slot = published(tmp_path).slots[0]
    assert (slot.state, slot.reason, slot.until) == ("paused", "the GPU is busy", clock.now + timedelta(hours=1))

    board.waiting("the coordinator did not answer", delay_s=30)
    slot = published(tmp_path).slots[0]
    assert (slot.state, slot.until) == ("waiting", clock.now + timedelta(seconds=30))


def test_todays_totals_count_runs_and_survive_a_restart_but_not_midnight(tmp_path: Path, clock: Clock) -> None:
    board = StatusBoard(tmp_path / STATUS_FILE, clock=clock)
    board.start(coordinator="http://c", hardware_class="h100-80gb", agent="offline")
    board.reported(kind="explore", run_status="ok", variant_status="candidate", track_id="t", variant_hash="a" * 64)
    board.reported(kind="explore", run_status="crashed", variant_status="crashed", track_id="t", variant_hash="b" * 64)
    board.reported(kind="verify", run_status="ok", variant_status="verified", track_id="t", variant_hash="c" * 64)
    board.released()
    board.stopped()

    again = StatusBoard(tmp_path / STATUS_FILE, clock=clock)
    again.start(coordinator="http://c", hardware_class="h100-80gb", agent="offline")
    today = published(tmp_path).today
    assert (today.experiments, today.candidates, today.verify_runs, today.failed, today.released) == (2, 1, 1, 1, 1)
    assert published(tmp_path).device == "gpu"

    clock.advance(24 * 3600)
    again.idle(retry_after_s=5)
    assert published(tmp_path).today.experiments == 0
    again.stopped()


def test_candidates_found_verified_are_counted_once_and_decided_ones_forgotten(
    tmp_path: Path, board: StatusBoard
) -> None:
    for digest in ("a", "b", "c"):
        board.reported(kind="explore", run_status="ok", variant_status="candidate", track_id="t", variant_hash=digest)
    verdicts = {"a": "verified", "b": "rejected", "c": "candidate"}

    board.follow_candidates(lambda _track, digest: verdicts[digest], force=True)
    board.follow_candidates(lambda _track, digest: verdicts[digest], force=True)

    status = published(tmp_path)
    assert (status.today.candidates, status.today.verified) == (3, 1)
    assert [c.hash for c in status.open_candidates] == ["c"]


def test_training_time_adds_up_as_device_hours(tmp_path: Path, board: StatusBoard) -> None:
    board.lease_started(lease(LeaseKind.verify))
    with board.training(run="variant", time_budget_s=60.0):
        pass

    assert 0 < published(tmp_path).today.device_hours < 0.01


# --- reading ---


def test_no_status_file_is_not_running(tmp_path: Path) -> None:
    report = read_status(tmp_path)

    assert (report.running, report.worker) == (False, None)
    assert report.note == "not running: no worker has published a status in this home"


def test_a_fresh_status_of_a_live_process_is_running(tmp_path: Path, board: StatusBoard, clock: Clock) -> None:
    report = read_status(tmp_path, now=clock.now + timedelta(seconds=5))

    assert (report.running, report.note) == (True, None)
    assert report.worker is not None and report.worker.pid == os.getpid()


def test_a_stopped_worker_is_not_running(tmp_path: Path, board: StatusBoard, clock: Clock) -> None:
    board.stopped()

    report = read_status(tmp_path, now=clock.now + timedelta(seconds=90))

    assert not report.running and report.note == "not running: stopped 90s ago"


def test_a_worker_whose_process_is_gone_is_not_running(tmp_path: Path, board: StatusBoard, clock: Clock) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    status = published(tmp_path).model_copy(update={"pid": int(gone.stdout)})
    (tmp_path / STATUS_FILE).write_text(status.model_dump_json())

    report = read_status(tmp_path, now=clock.now + timedelta(seconds=5))

    assert not report.running
    assert report.note == f"not running: process {gone.stdout.strip()} is gone (last update 5s ago)"


def test_a_status_not_updated_for_a_minute_is_not_running(tmp_path: Path, board: StatusBoard, clock: Clock) -> None:
    report = read_status(tmp_path, now=clock.now + timedelta(seconds=STALE_AFTER_S + 1))

    assert not report.running
    assert report.note == (
        f"not running: no update for {STALE_AFTER_S + 1:.0f}s"
        f" (process {os.getpid()} still exists but is not updating it)"
    )


def test_the_outbox_backlog_is_counted_from_the_folder(tmp_path: Path) -> None:
    (tmp_path / "outbox" / "refused").mkdir(parents=True)
    for name in ("a.json", "b.json", "refused/c.json", "refused/c.error.json"):
        (tmp_path / "outbox" / name).write_text("{}")

    backlog = read_status(tmp_path).outbox

    assert (backlog.pending, backlog.refused) == (2, 1) and backlog.oldest is not None


# --- the command ---


def test_status_json_is_the_report_and_exits_3_when_not_running(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["status", "--home", str(tmp_path), "--json"])

    assert result.exit_code == 3, result.output
    report = StatusReport.model_validate_json(result.output)
    assert (report.running, report.home) == (False, str(tmp_path.resolve()))


def test_status_shows_the_running_worker_as_a_short_table(tmp_path: Path) -> None:
    board = StatusBoard(tmp_path / STATUS_FILE)  # the real clock: the reader compares with now
    board.start(coordinator="http://coordinator.test", hardware_class="cpu", agent="offline")
    board.joined(worker_id="w" * 32, name="box", account="alice")
    board.lease_started(lease(LeaseKind.verify))
    try:
        with board.training(run="variant", time_budget_s=60.0):
            board.progress(phase="training", step=12, loss=2.25, elapsed_s=3.0, time_budget_s=60.0)
            result = CliRunner().invoke(app, ["status", "--home", str(tmp_path)], env={"COLUMNS": "160"})
            as_json = CliRunner().invoke(app, ["status", "--home", str(tmp_path), "--json"])
    finally:
        board.stopped()

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"worker box (alice): running, pid {os.getpid()}, up ")
    assert "verifying" in result.output and "verify ababababab on cpu-tiny" in result.output
    assert "step 12, loss 2.2500" in result.output and "ETA " in result.output
    assert "today (" in result.output and "0 experiments, 0 claimed improvements (0 verified)" in result.output
    assert "outbox: 0 results waiting" in result.output
    slot = json.loads(as_json.output)["worker"]["slots"][0]
    assert (slot["state"], slot["lease"]["kind"], slot["progress"]["step"]) == ("verifying", "verify", 12)
