"""`worker join --gpus`: which GPUs, one pinned child worker per GPU, and `worker status` over them."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.fake_nvml import FakeGpu, FakeNvml
from worker.cli import app
from worker.gpus import (
    GpuSelectionError,
    Slot,
    Supervisor,
    choose_slots,
    parse_gpus,
    prepare_slot_home,
    slot_env,
    visible_devices,
    write_slots_file,
)
from worker.status import STATUS_FILE, StatusBoard, read_status, render_report

NOW = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("all", "all"), ("ALL", "all"), ("0", [0]), ("0,2", [0, 2]), (" 3 , 1 ", [3, 1])],
)
def test_gpus_is_all_or_a_list_of_numbers(text: str, expected: object) -> None:
    assert parse_gpus(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--gpus takes 'all' or GPU numbers separated by commas, e.g. 0,2 (not '')"),
        ("0,,1", "--gpus takes 'all' or GPU numbers separated by commas, e.g. 0,2 (not '0,,1')"),
        ("-1", "--gpus takes 'all' or GPU numbers separated by commas, e.g. 0,2 (not '-1')"),
        ("cuda:0", "--gpus takes 'all' or GPU numbers separated by commas, e.g. 0,2 (not 'cuda:0')"),
        ("1,0,1", "--gpus names GPU 1 twice"),
    ],
)
def test_a_malformed_gpus_value_says_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(GpuSelectionError) as raised:
        parse_gpus(text)
    assert str(raised.value) == message


def test_all_gpus_or_the_listed_ones_each_get_a_slot_pinned_to_its_device() -> None:
    devices = visible_devices({}, 3)

    assert choose_slots("all", devices) == [Slot(0, "0"), Slot(1, "1"), Slot(2, "2")]
    assert choose_slots([2, 0], devices) == [Slot(2, "2"), Slot(0, "0")]
    env = slot_env(Slot(2, "2"), {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1,2"})
    assert env["CUDA_VISIBLE_DEVICES"] == "2" and env["PATH"] == "/bin"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # nvidia-smi's numbering, which NVML shares
    assert (
        slot_env(Slot(0, "0"), {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
    )


def test_a_volunteers_cuda_visible_devices_narrows_and_numbers_the_gpus_as_cuda_does() -> None:
    devices = visible_devices({"CUDA_VISIBLE_DEVICES": "2,GPU-abc"}, 4)

    assert choose_slots("all", devices) == [Slot(0, "2"), Slot(1, "GPU-abc")]
    with pytest.raises(GpuSelectionError, match="there is no GPU 2; this machine has GPUs 0-1"):
        choose_slots([2], devices)


def test_a_gpu_that_does_not_exist_is_one_line_and_no_worker_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(FakeGpu(), FakeGpu()))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    home = tmp_path / "home"

    result = CliRunner().invoke(app, ["join", "http://127.0.0.1:9", "--home", str(home), "--gpus", "0,3"])

    assert result.exit_code == 1
    assert result.output == "error: --gpus: there is no GPU 3; this machine has GPUs 0-1\n"
    assert not home.exists()

    result = CliRunner().invoke(app, ["join", "http://127.0.0.1:9", "--home", str(home), "--gpus", "first"])
    assert (result.exit_code, result.output.count("\n")) == (1, 1)
    assert result.output.startswith("error: --gpus takes 'all' or GPU numbers")


def test_no_gpu_at_all_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(init_error="Driver Not Loaded"))
    monkeypatch.setitem(sys.modules, "torch", None)  # and no torch to ask either: import fails
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    result = CliRunner().invoke(app, ["join", "http://127.0.0.1:9", "--home", str(tmp_path), "--gpus", "all"])

    assert (result.exit_code, result.output) == (
        1,
        "error: --gpus: this machine has no GPU that CUDA or NVML can see\n",
    )


def test_slot_homes_share_the_track_data_and_the_host_limits(tmp_path: Path) -> None:
    (tmp_path / "worker.toml").write_text('when = "idle"\n')

    slot_home = prepare_slot_home(tmp_path, Slot(1, "1"))
    (tmp_path / "assets" / "abc").write_text("shard")

    assert slot_home == tmp_path / "gpu1"
    assert (slot_home / "assets" / "abc").read_text() == "shard"
    assert (slot_home / "worker.toml").read_text() == 'when = "idle"\n'
    assert prepare_slot_home(tmp_path, Slot(1, "1")) == slot_home  # again: nothing to do, no error


CHILD = """
import os, signal, sys, time
seen = []
def handle(signum, frame):
    seen.append(signum)
    print("signal", len(seen), flush=True)
    if len(seen) == 2:
        sys.exit(int(os.environ["EXIT_CODE"]))
signal.signal(signal.SIGTERM, handle)
print("pinned to", os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(9)
"""


def test_the_supervisor_prefixes_output_passes_on_both_stop_signals_and_reports_a_failure() -> None:
    slots = [Slot(0, "0"), Slot(1, "1")]
    out = io.StringIO()
    supervisor = Supervisor(
        slots,
        argv_for={slot: [sys.executable, "-c", CHILD] for slot in slots},
        env_for={slot: slot_env(slot, {**os.environ, "EXIT_CODE": str(slot.gpu * 3)}) for slot in slots},
        out=out,
    )

    def stop_twice() -> None:
        deadline = time.monotonic() + 60
        while out.getvalue().count("pinned to") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # as systemd stops the service
        while out.getvalue().count("signal 1") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    stopper = threading.Thread(target=stop_twice)
    stopper.start()
    try:
        code = supervisor.run()
    finally:
        stopper.join()

    lines = out.getvalue().splitlines()
    assert {"[gpu0] pinned to 0", "[gpu1] pinned to 1", "[gpu0] signal 2", "[gpu1] signal 2"} <= set(lines)
    assert "stopping after the current runs (interrupt again to abort them)" in lines
    assert "aborting the current runs and exiting" in lines
    assert lines[-2:] == ["gpu0: worker exited with status 0", "gpu1: worker exited with status 3"]
    assert code == 3
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the supervisor's handler is gone


def _slot_board(home: Path, *, gpu: int, experiments: int) -> StatusBoard:
    board = StatusBoard(home / f"gpu{gpu}" / STATUS_FILE, clock=lambda: NOW)
    board.start(coordinator="http://c", hardware_class="h100-sxm-80gb", agent="offline")
    board.joined(worker_id=f"{gpu}" * 32, name=f"box-gpu{gpu}", account="alice")
    for n in range(experiments):
        board.reported(
            kind="explore", run_status="ok", variant_status="discarded", track_id="t", variant_hash=f"{n}"
        )
    return board


def test_status_of_a_gpus_home_shows_one_slot_per_gpu_with_its_worker(tmp_path: Path) -> None:
    slots = [Slot(0, "0"), Slot(2, "2")]
    for slot in slots:
        prepare_slot_home(tmp_path, slot)
    (tmp_path / STATUS_FILE).write_text("{}")  # a single worker's, from before: not read
    write_slots_file(tmp_path, slots)
    first, second = _slot_board(tmp_path, gpu=0, experiments=2), _slot_board(tmp_path, gpu=2, experiments=1)
    second.stopped()
    try:
        report = read_status(tmp_path, now=NOW, alive=lambda pid: True)
        rendered = Console(width=200, record=True)
        rendered.print(render_report(report, now=NOW))
    finally:
        first.stopped()

    assert report.running and report.note is None
    assert report.worker is not None
    assert (report.worker.name, report.worker.account, report.worker.pid) == ("box", "alice", os.getpid())
    assert [(s.slot, s.name, s.worker_id, s.state) for s in report.worker.slots] == [
        (0, "box-gpu0", "0" * 32, "starting"),
        (2, "box-gpu2", "2" * 32, "stopped"),
    ]
    assert report.worker.today.experiments == 3
    text = rendered.export_text()
    assert "box-gpu0" in text and "box-gpu2" in text and "gpu" in text.splitlines()[2]

    after = read_status(tmp_path, now=NOW, alive=lambda pid: True)
    assert (after.running, after.note) == (False, "not running: none of the 2 GPU workers runs")
