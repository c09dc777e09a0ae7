"""What the host limits are judged on: NVML (a fake `pynvml` module), the desktop's idle time (real
commands and files), the load average (a fake kernel figure) and this worker's own processes (real)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_nvml import FakeGpu, FakeNvml
from worker.host_limits import GpuProcess, HostLimits, When
from worker.host_probe import (
    CommandIdleSource,
    LoadAverage,
    NvmlGpus,
    SystemProbe,
    TtyIdleSource,
    choose_idle_source,
    own_pids,
)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def parent_name() -> str:
    return Path(f"/proc/{os.getppid()}/comm").read_text().strip()


def test_own_processes_are_this_one_and_all_it_started(child: subprocess.Popen[bytes]) -> None:
    ours = own_pids()

    assert {os.getpid(), child.pid} <= ours
    assert os.getppid() not in ours


def test_nvml_reports_temperature_power_and_other_peoples_processes_never_this_workers(
    monkeypatch: pytest.MonkeyPatch, child: subprocess.Popen[bytes]
) -> None:
    other = os.getppid()
    nvml = FakeNvml(FakeGpu(temperature_c=71, power_mw=215_500, compute=[os.getpid(), child.pid, other]))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)

    [reading] = NvmlGpus(environ={}).read()

    assert (reading.index, reading.temperature_c, reading.power_w) == (0, 71.0, 215.5)
    assert reading.others == (GpuProcess(pid=other, name=parent_name()),)


def test_ignored_process_names_never_make_the_gpu_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(FakeGpu(graphics=[os.getppid()])))

    [reading] = NvmlGpus(environ={}, ignore=[parent_name()]).read()

    assert reading.others == ()


def test_cuda_visible_devices_narrows_the_gpus_watched_by_index_or_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    second = FakeGpu(temperature_c=60, uuid="GPU-2")
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(FakeGpu(), second))

    assert [g.index for g in NvmlGpus(environ={"CUDA_VISIBLE_DEVICES": "1"}).read()] == [1]
    assert [g.index for g in NvmlGpus(environ={"CUDA_VISIBLE_DEVICES": "GPU-2"}).read()] == [1]
    assert [g.index for g in NvmlGpus(environ={}).read()] == [0, 1]
    none = NvmlGpus(environ={"CUDA_VISIBLE_DEVICES": ""})
    assert none.read() == ()
    assert none.missing == "NVML sees no GPU this worker may use"


def test_a_gpu_that_does_not_report_its_power_reads_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(FakeGpu(power_mw=None)))

    [reading] = NvmlGpus(environ={}).read()

    assert reading.power_w is None and reading.temperature_c == 45.0


def test_no_library_or_no_driver_means_no_gpu_to_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # what `import pynvml` finds without nvidia-ml-py
    without_library = NvmlGpus(environ={})
    assert without_library.read() == ()
    assert without_library.missing == "nvidia-ml-py is not installed"

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(init_error="Driver Not Loaded"))
    without_driver = NvmlGpus(environ={})
    assert without_driver.read() == ()
    assert without_driver.missing == "NVML cannot start: Driver Not Loaded"


def test_a_cpu_worker_watches_no_gpu_and_says_why() -> None:
    probe = SystemProbe.for_limits(HostLimits(max_gpu_temp_c=80), watch_gpu=False)

    reading = probe.read()

    assert probe.gpus is None
    assert (reading.gpus, reading.gpu_missing) == ((), "this worker trains on the CPU")


def test_only_the_sources_the_limits_need_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())

    load_only = SystemProbe.for_limits(HostLimits(max_cpu_load=2.0), watch_gpu=True)
    gpu = SystemProbe.for_limits(HostLimits(max_gpu_power_w=100), watch_gpu=True)

    assert (load_only.gpus, load_only.idle) == (None, None)
    assert load_only.read().load_per_core is not None
    assert gpu.read().gpus[0].power_w == 90.0
    gpu.close()


def test_the_load_per_core_leaves_out_this_workers_own_share_averaged_as_the_kernel_does() -> None:
    clock = [0.0]
    load = LoadAverage(
        loadavg=lambda: (6.0, 5.0, 4.0), cores=4, own_runnable=lambda: 4, monotonic=lambda: clock[0]
    )

    assert load.read() == 6.0 / 4  # nothing of ours has run yet
    clock[0] = 60.0  # a minute of 4 training threads: the kernel counts 4 x (1 - 1/e) of them by now
    own = 4 * (1 - math.exp(-1))
    assert load.read() == pytest.approx((6.0 - own) / 4)


def test_the_real_load_average_reads() -> None:
    assert (LoadAverage().read() or 0.0) >= 0.0


def test_an_idle_command_prints_milliseconds_and_a_failing_one_says_why() -> None:
    source = CommandIdleSource([sys.executable, "-c", "print(90500)"])
    assert source.read() == 90.5

    broken = CommandIdleSource([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert broken.read() is None
    assert broken.missing is not None and "exit status 3" in broken.missing
    assert choose_idle_source("xprintidle --verbose")[0].argv == ["xprintidle", "--verbose"]  # type: ignore[union-attr]


def test_terminal_idle_time_is_the_age_of_the_newest_keystroke(tmp_path: Path) -> None:
    ttys = [tmp_path / "pts0", tmp_path / "pts1"]
    now = time.time()
    for tty, age in zip(ttys, (600, 240), strict=True):
        tty.touch()
        os.utime(tty, (now - age, now - age))

    assert TtyIdleSource(lambda: ttys, now=lambda: now).read() == pytest.approx(240)
    nothing = TtyIdleSource(lambda: [])
    assert nothing.read() is None and nothing.missing == "no terminal to watch"


def test_an_idle_probe_reads_the_desktop_through_its_source() -> None:
    probe = SystemProbe(idle=CommandIdleSource([sys.executable, "-c", "print(1500)"]))

    assert probe.read().user_idle_s == 1.5
    assert SystemProbe.for_limits(HostLimits(when=When.idle), watch_gpu=False, idle_command="true").idle is not None
