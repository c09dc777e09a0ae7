"""The host limits in the daemon loop: a real Daemon against the real coordinator app (the fixtures
of test_daemon.py), with a stand-in for training. Only what cannot run here is faked: the `pynvml`
module (tests.fake_nvml), the desktop's idle time and the clock.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.protocol import HardwareInfo
from tests.fake_nvml import FakeGpu, FakeNvml
from tests.unit import test_daemon as setup
from tests.unit.test_daemon import URL, Coordinator, StandInExecutor, Volunteer, wait_until
from worker.agents.offline import OfflineAgent
from worker.client import CoordinatorClient, RetryPolicy
from worker.daemon import Counters, Daemon, DaemonOptions
from worker.display import PlainDisplay
from worker.host_limits import HostGate, HostLimits, When, parse_hours
from worker.host_probe import NvmlGpus, SystemProbe

coordinator = setup.coordinator
volunteer = setup.volunteer

CHECK_S = 0.02
LOCAL = timezone(timedelta(hours=1))
LEASE_REQUEST = "POST /v1/leases"


class IdleDesktop:
    """The desktop's idle time, as xprintidle would tell it: nobody has touched it for an hour."""

    missing: str | None = None

    def read(self) -> float | None:
        return 3600.0


@dataclass
class FakeClock:
    now: datetime
    reads: int = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.now


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 2, hour, minute, tzinfo=LOCAL)


def daemon_for(volunteer: Volunteer, *, executor: StandInExecutor, host: HostGate, **options: Any) -> Daemon:
    client = CoordinatorClient(
        URL,
        transport=volunteer.transport,
        wait=volunteer.stop.aborting.wait,
        retry_policy=RetryPolicy(max_attempts=2, base_delay_s=0.01),
    )
    return Daemon(
        client=client,
        home=volunteer.home,
        agent=OfflineAgent(),
        executor=executor,
        display=PlainDisplay(volunteer.output),
        options=DaemonOptions(
            coordinator_url=URL,
            hardware=HardwareInfo(hardware_class="cpu"),
            account="alice",
            name="alice-box",
            **options,
        ),
        stop=volunteer.stop,
        host=host,
    )


@contextmanager
def running(daemon: Daemon) -> Iterator[list[Counters]]:
    """The daemon's loop on a thread, so the test can change the host while it waits; the counters
    arrive in the list when it ends."""
    done: list[Counters] = []
    thread = threading.Thread(target=lambda: done.append(daemon.run()), daemon=True)
    thread.start()
    try:
        yield done
    except BaseException:
        daemon.stop.request()
        daemon.stop.request()
        thread.join(timeout=30)
        raise
    thread.join(timeout=30)
    assert not thread.is_alive(), "the daemon did not finish"


def output_has(output: io.StringIO, text: str) -> Callable[[], bool]:
    return lambda: text in output.getvalue()


def test_a_busy_gpu_stops_the_run_hands_the_lease_back_and_the_worker_resumes_when_the_gpu_is_free(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer], monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = FakeGpu(compute=[os.getpid()])  # this worker's own process never makes the GPU busy
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(gpu))
    someone = os.getppid()  # a real process that is not this worker's
    someone_name = Path(f"/proc/{someone}/comm").read_text().strip()
    alice = volunteer("alice")

    def someone_starts_on_the_gpu(should_abort: Callable[[], bool]) -> str | None:
        if len(executor.calls) > 1:
            return None  # the run after the GPU is free again finishes
        gpu.compute.append(someone)
        return "aborted" if wait_until(should_abort) else None

    executor = StandInExecutor(during=someone_starts_on_the_gpu)
    gate = HostGate(
        HostLimits(when=When.idle),
        SystemProbe(gpus=NvmlGpus(environ={}), idle=IdleDesktop()),
        check_interval_s=CHECK_S,
    )

    with running(daemon_for(alice, executor=executor, host=gate, max_experiments=1)) as done:
        assert wait_until(output_has(alice.output, f"waiting: GPU 0 is in use by {someone_name} (pid {someone})"))
        asked, reads = alice.transport.paths.count(LEASE_REQUEST), gpu.reads
        assert wait_until(lambda: gpu.reads >= reads + 5)
        assert alice.transport.paths.count(LEASE_REQUEST) == asked  # no lease asked for while it is busy
        gpu.compute.remove(someone)

    [counters] = done
    assert (counters.leases, counters.released, counters.host_busy, counters.completed) == (2, 1, 1, 1)
    first, second = coordinator.query("select state, release_reason from leases order by created_at")
    assert first == ("released", f"host busy: GPU 0 is in use by {someone_name} (pid {someone})")
    assert second == ("completed", None)
    # The stopped run reported nothing: it counts against no one.
    assert coordinator.query("select count(*) from runs") == [(1,)]
    assert coordinator.query("select invalid_results from workers") == [(0,)]
    output = alice.output.getvalue()
    assert "host busy: GPU 0 is in use by" in output and "stopping the run and handing the lease back" in output
    assert "host limits allow work again; asking for leases" in output
    assert "1 released (1 for a busy host)" in output


def test_a_gpu_over_its_temperature_cap_pauses_work_until_it_is_below_the_cap_less_the_hysteresis(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer], monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = FakeGpu(temperature_c=90)
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(gpu))
    alice = volunteer("alice")
    gate = HostGate(HostLimits(max_gpu_temp_c=85), SystemProbe(gpus=NvmlGpus(environ={})), check_interval_s=CHECK_S)

    with running(daemon_for(alice, executor=StandInExecutor(), host=gate, max_experiments=1)) as done:
        assert wait_until(
            output_has(alice.output, "waiting: GPU 0 at 90 °C, over --max-gpu-temp 85; resuming below 80 °C")
        )
        gpu.temperature_c = 82  # under the cap, but not yet under the cap less 5 °C
        reads = gpu.reads
        assert wait_until(lambda: gpu.reads >= reads + 5)
        assert LEASE_REQUEST not in alice.transport.paths
        gpu.temperature_c = 79

    [counters] = done
    assert (counters.leases, counters.completed) == (1, 1)
    assert coordinator.query("select state from leases") == [("completed",)]


def test_outside_the_hours_no_lease_is_asked_for_until_the_window_opens(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")
    clock = FakeClock(at(14, 5))
    gate = HostGate(HostLimits(hours=parse_hours("22-07")), SystemProbe(clock=clock), check_interval_s=CHECK_S)

    with running(daemon_for(alice, executor=StandInExecutor(), host=gate, max_experiments=1)) as done:
        assert wait_until(output_has(alice.output, "waiting: outside --hours 22-07, until 22:00"))
        reads = clock.reads
        assert wait_until(lambda: clock.reads >= reads + 5)
        assert "POST /v1/workers" in alice.transport.paths  # it joined the network; it takes no work
        assert LEASE_REQUEST not in alice.transport.paths
        clock.now = at(22, 0)

    [counters] = done
    assert (counters.leases, counters.completed) == (1, 1)


def test_the_end_of_the_hours_stops_a_run_in_progress_and_hands_its_lease_back(
    coordinator: Coordinator, volunteer: Callable[[str], Volunteer]
) -> None:
    alice = volunteer("alice")
    clock = FakeClock(at(6, 58))

    def morning_comes(should_abort: Callable[[], bool]) -> str | None:
        clock.now = at(7, 0)
        aborted = wait_until(should_abort)
        alice.stop.request()  # the volunteer stops the worker for the day
        return "aborted" if aborted else None

    gate = HostGate(HostLimits(hours=parse_hours("22-07")), SystemProbe(clock=clock), check_interval_s=CHECK_S)

    with running(daemon_for(alice, executor=StandInExecutor(during=morning_comes), host=gate)) as done:
        pass

    [counters] = done
    assert (counters.leases, counters.host_busy, counters.completed) == (1, 1, 0)
    assert coordinator.query("select state, release_reason from leases") == [
        ("released", "host busy: outside --hours 22-07")
    ]
