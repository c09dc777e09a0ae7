"""The host limits' decision (worker.host_limits.check): pure, so every case is one reading."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from worker.host_limits import (
    GpuProcess,
    GpuReading,
    HostGate,
    HostLimits,
    HostLimitsError,
    HostReading,
    HoursWindow,
    Verdict,
    When,
    check,
    parse_hours,
    until_text,
)

LOCAL = timezone(timedelta(hours=1))


def at(hour: int, minute: int = 0, *, day: int = 2) -> datetime:
    return datetime(2026, 12, day, hour, minute, 30, tzinfo=LOCAL)


def gpu(*, temp: float | None = 50.0, power: float | None = 100.0, others: tuple[int, ...] = ()) -> GpuReading:
    return GpuReading(
        index=0, temperature_c=temp, power_w=power, others=tuple(GpuProcess(pid, "game") for pid in others)
    )


def reading(now: datetime | None = None, **fields: Any) -> HostReading:
    return HostReading(now=now or at(12), **fields)


# --- --hours ------------------------------------------------------------------------------------


def test_hours_windows_parse_with_minutes_several_and_wrapping_midnight() -> None:
    assert parse_hours("22-07") == (HoursWindow(22 * 60, 7 * 60),)
    assert parse_hours("9-12:30, 20:15-24") == (HoursWindow(9 * 60, 12 * 60 + 30), HoursWindow(20 * 60 + 15, 0))
    night = parse_hours("22-07")[0]
    assert [night.contains(m) for m in (21 * 60 + 59, 22 * 60, 0, 6 * 60 + 59, 7 * 60)] == [
        False, True, True, True, False,
    ]  # fmt: skip
    assert str(parse_hours("9-12:30")[0]) == "09-12:30"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("22", "hours '22' is not a window like 22-07 or 09:30-17"),
        ("9-17,", "hours '' is not a window like 22-07 or 09:30-17"),
        ("25-07", "hours '25-07' holds a time that is not on a clock"),
        ("22:60-07", "hours '22:60-07' holds a time that is not on a clock"),
        ("24-07", "hours '24-07' holds a time that is not on a clock"),
        ("08-08", "hours '08-08' starts and ends at once; leave --hours out to work all day"),
    ],
)
def test_a_malformed_hours_window_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(HostLimitsError) as caught:
        parse_hours(text)
    assert str(caught.value) == message


def test_outside_the_hours_no_work_until_the_next_window_opens() -> None:
    limits = HostLimits(hours=parse_hours("22-07"))

    afternoon = check(limits, reading(at(14, 5)))
    assert afternoon == Verdict(
        allowed=False,
        reason="outside --hours 22-07",
        until=at(22).replace(second=0),
        blockers=frozenset({"hours"}),
        at=at(14, 5),
    )
    assert until_text(afternoon.until or at(0), at(14, 5)) == "22:00"
    assert check(limits, reading(at(23, 10))).allowed
    assert check(limits, reading(at(6, 59))).allowed
    assert not check(limits, reading(at(7, 0))).allowed


def test_with_several_windows_the_nearest_opening_is_the_until_even_on_the_next_day() -> None:
    limits = HostLimits(hours=parse_hours("12-13,20:30-21"))

    evening = check(limits, reading(at(21, 30)))
    assert evening.until == at(12, day=3).replace(second=0)
    assert until_text(evening.until or at(0), at(21, 30)) == "Thu 12:00"
    assert check(limits, reading(at(14))).until == at(20, 30).replace(second=0)


# --- temperature and power: hysteresis -----------------------------------------------------------


def test_a_gpu_over_its_temperature_cap_holds_work_until_it_is_below_the_cap_less_5_degrees() -> None:
    limits = HostLimits(max_gpu_temp_c=85)
    verdict: Verdict | None = None
    seen = []
    for temp in (84, 86, 84, 80, 79.5, 84, 85.5):
        verdict = check(limits, reading(gpus=(gpu(temp=temp),)), previous=verdict)
        seen.append(verdict.allowed)

    # Under the cap at first; over it; held while it cools to 80; free below 80; and held again over 85.
    assert seen == [True, False, False, False, True, True, False]
    cooling = check(limits, reading(gpus=(gpu(temp=82),)), previous=verdict)
    assert cooling.reason == (
        "GPU 0 at 82 °C, cooling down from over --max-gpu-temp 85; resuming below 80 °C"
    )
    assert cooling.until is None


def test_a_gpu_over_its_power_cap_holds_work_until_it_draws_10_percent_less() -> None:
    limits = HostLimits(max_gpu_power_w=300)

    over = check(limits, reading(gpus=(gpu(power=310),)))
    held = check(limits, reading(gpus=(gpu(power=275),)), previous=over)
    free = check(limits, reading(gpus=(gpu(power=269),)), previous=held)

    assert over.reason == "GPU 0 at 310 W, over --max-gpu-power 300; resuming below 270 W"
    assert (over.allowed, held.allowed, free.allowed) == (False, False, True)


def test_a_gpu_that_does_not_report_a_reading_is_named_once_and_not_held_back() -> None:
    verdict = check(HostLimits(max_gpu_power_w=300), reading(gpus=(gpu(power=None),)))

    assert verdict.allowed
    assert verdict.notes == ("GPU 0 does not report its power draw, so --max-gpu-power cannot apply to it",)


# --- --when idle ---------------------------------------------------------------------------------


def test_another_process_on_the_gpu_holds_work_only_with_when_idle() -> None:
    busy = reading(gpus=(gpu(others=(4242,)),), user_idle_s=3600.0)

    assert check(HostLimits(when=When.always), busy).allowed
    verdict = check(HostLimits(when=When.idle), busy)
    assert verdict.reason == "GPU 0 is in use by game (pid 4242)"
    assert verdict.blockers == frozenset({"gpu-busy:0"})
    assert check(HostLimits(when=When.idle), reading(gpus=(gpu(),), user_idle_s=3600.0)).allowed


def test_a_desktop_used_recently_holds_work_until_it_has_been_idle_long_enough() -> None:
    limits = HostLimits(when=When.idle, idle_minutes=10)

    recent = check(limits, reading(user_idle_s=150.0))
    assert recent.reason == "the desktop was used 2 min ago (--when idle waits for 10 min without input)"
    assert check(limits, reading(user_idle_s=600.0)).allowed


def test_without_a_way_to_read_idle_time_or_a_gpu_the_worker_says_so_and_counts_the_host_idle() -> None:
    limits = HostLimits(when=When.idle, max_gpu_temp_c=80)

    verdict = check(limits, reading(gpu_missing="nvidia-ml-py is not installed", idle_missing="no xprintidle"))

    assert verdict.allowed
    assert verdict.notes == (
        "no GPU to watch (nvidia-ml-py is not installed), so --when idle's GPU check and --max-gpu-temp cannot apply",
        "the desktop's idle time cannot be read (no xprintidle); treating the desktop as idle",
    )


# --- --max-cpu-load, and several at once ----------------------------------------------------------


def test_a_load_over_the_cap_holds_work() -> None:
    limits = HostLimits(max_cpu_load=0.8)

    assert check(limits, reading(load_per_core=0.5)).allowed
    assert check(limits, reading(load_per_core=1.25)).reason == "CPU load 1.25 per core, over --max-cpu-load 0.8"


def test_every_reason_is_given_and_an_until_only_when_the_clock_alone_holds_work() -> None:
    limits = HostLimits(hours=parse_hours("22-07"), max_gpu_temp_c=80)

    verdict = check(limits, reading(at(14), gpus=(gpu(temp=90),)))

    assert verdict.reason == "outside --hours 22-07; GPU 0 at 90 °C, over --max-gpu-temp 80; resuming below 75 °C"
    assert verdict.until is None
    assert verdict.blockers == frozenset({"hours", "temp:0"})


def test_no_limits_means_the_host_is_never_looked_at() -> None:
    assert not HostLimits().active
    assert HostLimits().describe() == "none"
    assert HostLimits(when=When.idle, hours=parse_hours("22-07"), max_gpu_temp_c=80).describe() == (
        "only while the GPU is free and the desktop idle for 10 min; hours 22-07;"
        " GPU up to 80 °C (resumes below 75 °C)"
    )


class Readings:
    """A HostProbe that hands out the readings it is given, one per check."""

    def __init__(self, *readings: HostReading) -> None:
        self.readings = list(readings)

    def read(self) -> HostReading:
        return self.readings.pop(0)


def test_the_gate_keeps_the_hysteresis_state_and_hands_each_note_out_once() -> None:
    hot, warm = gpu(temp=90), gpu(temp=83)
    gate = HostGate(
        HostLimits(max_gpu_temp_c=85, max_cpu_load=1.0),
        Readings(reading(gpus=(hot,)), reading(gpus=(warm,)), reading(gpus=(warm,))),
    )

    first = gate.check()
    assert not first.allowed
    assert gate.new_notes(first) == ["the load average cannot be read here, so --max-cpu-load cannot apply"]
    second = gate.check()
    assert not second.allowed  # 83 °C: still cooling, because the gate remembers 90
    assert gate.new_notes(second) == []
    assert gate.last is second
