"""When may this machine work? The volunteer's limits, and the decision, with nothing read here.

Volunteers lend machines they also use. `HostLimits` says when work may run (`--when`, `--hours`,
the GPU's temperature and power caps, the CPU load); `check` turns one `HostReading` (what a
`HostProbe` saw: the local time, each GPU's processes, temperature and power, how long the
desktop has been idle, the load) into a `Verdict`. `check` is pure: the caller keeps the previous
verdict, which is the hysteresis state. A temperature or power cap, once exceeded, holds until the
reading falls below the cap less the hysteresis (5 °C; 10% of the power cap), so a GPU hovering at
its cap does not start and stop work every few seconds. Everything else is judged afresh each time.

`HostGate` is the stateful wrapper the daemon uses: it reads a probe, keeps the last verdict, and
hands each note (a limit that cannot be enforced here, and why) out once. The system probe, which
reads NVML, the desktop's idle time and the load average, is in worker.host_probe.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

TEMP_HYSTERESIS_C = 5.0  # a GPU over --max-gpu-temp resumes below the cap less this
POWER_HYSTERESIS = 0.10  # ... and over --max-gpu-power, below the cap less this fraction of it
MINUTES_PER_DAY = 24 * 60


class When(StrEnum):
    always = "always"  # work whenever the other limits allow
    idle = "idle"  # ... and only while no other process uses the GPU and the desktop is idle


class HostLimitsError(ValueError):
    """A limit that cannot be understood, e.g. a malformed --hours window."""


@dataclass(frozen=True)
class HoursWindow:
    """Local time from `start` up to, not including, `end`, in minutes after midnight.

    A window whose end is not after its start wraps midnight: 22:00-07:00 holds 23:30 and 06:59.
    """

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{_clock_text(self.start)}-{_clock_text(self.end)}"


def _clock_text(minute: int) -> str:
    hours, minutes = divmod(minute, 60)
    return f"{hours:02d}" if minutes == 0 else f"{hours:02d}:{minutes:02d}"


_TIME = r"(\d{1,2})(?::(\d{2}))?"
_WINDOW = re.compile(rf"^{_TIME}-{_TIME}$")


def parse_hours(text: str) -> tuple[HoursWindow, ...]:
    """'22-07' or '9-12:30,20-23': windows of local time, comma-separated; each may wrap midnight."""
    windows = []
    for part in text.split(","):
        part = part.strip()
        match = _WINDOW.match(part)
        if match is None:
            raise HostLimitsError(f"hours {part!r} is not a window like 22-07 or 09:30-17")
        start_h, start_m, end_h, end_m = match.groups()
        start = _minute_of(start_h, start_m, part, allow_24=False)
        end = _minute_of(end_h, end_m, part, allow_24=True) % MINUTES_PER_DAY
        if start == end:
            raise HostLimitsError(f"hours {part!r} starts and ends at once; leave --hours out to work all day")
        windows.append(HoursWindow(start, end))
    return tuple(windows)


def _minute_of(hours: str, minutes: str | None, part: str, *, allow_24: bool) -> int:
    h, m = int(hours), int(minutes or 0)
    if m >= 60 or h > 24 or (h == 24 and (m or not allow_24)):
        raise HostLimitsError(f"hours {part!r} holds a time that is not on a clock")
    return h * 60 + m


@dataclass(frozen=True)
class HostLimits:
    when: When = When.always
    idle_minutes: float = 10.0  # with `when` idle: the desktop's input must be this old
    hours: tuple[HoursWindow, ...] = ()  # empty: all day
    max_gpu_temp_c: float | None = None
    max_gpu_power_w: float | None = None
    max_cpu_load: float | None = None  # 1-minute load average per core, less this worker's own

    @property
    def active(self) -> bool:
        """Whether any limit is set; with none, the host is never looked at."""
        return (
            self.when is When.idle
            or bool(self.hours)
            or self.max_gpu_temp_c is not None
            or self.max_gpu_power_w is not None
            or self.max_cpu_load is not None
        )

    @property
    def watches_gpu(self) -> bool:
        return self.when is When.idle or self.max_gpu_temp_c is not None or self.max_gpu_power_w is not None

    @property
    def hours_text(self) -> str:
        return ",".join(str(window) for window in self.hours)

    @property
    def temp_resume_c(self) -> float | None:
        return None if self.max_gpu_temp_c is None else self.max_gpu_temp_c - TEMP_HYSTERESIS_C

    @property
    def power_resume_w(self) -> float | None:
        return None if self.max_gpu_power_w is None else self.max_gpu_power_w * (1 - POWER_HYSTERESIS)

    def describe(self) -> str:
        """One line for the screen at start: every limit in force."""
        parts = []
        if self.when is When.idle:
            parts.append(f"only while the GPU is free and the desktop idle for {self.idle_minutes:g} min")
        if self.hours:
            parts.append(f"hours {self.hours_text}")
        if self.max_gpu_temp_c is not None:
            parts.append(f"GPU up to {self.max_gpu_temp_c:g} °C (resumes below {self.temp_resume_c:g} °C)")
        if self.max_gpu_power_w is not None:
            parts.append(f"GPU up to {self.max_gpu_power_w:g} W (resumes below {self.power_resume_w:g} W)")
        if self.max_cpu_load is not None:
            parts.append(f"CPU load up to {self.max_cpu_load:g} per core")
        return "; ".join(parts) if parts else "none"


# --- what a probe reads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str | None = None  # the process name where this machine can read it


@dataclass(frozen=True)
class GpuReading:
    index: int
    temperature_c: float | None = None  # None: the GPU does not say
    power_w: float | None = None
    others: tuple[GpuProcess, ...] = ()  # processes on it that are neither this worker's nor ignored


@dataclass(frozen=True)
class HostReading:
    now: datetime  # local time, timezone-aware
    gpus: tuple[GpuReading, ...] = ()
    gpu_missing: str | None = None  # why no GPU can be watched, when none can
    user_idle_s: float | None = None  # seconds since the desktop's last input
    idle_missing: str | None = None  # why that is unknown, when it is
    load_per_core: float | None = None
    notes: tuple[str, ...] = ()  # what else the probe could not read, e.g. a GPU's process list


class HostProbe(Protocol):
    def read(self) -> HostReading: ...


# --- the decision ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""  # why not, for the screen and the release reason; "" when allowed
    until: datetime | None = None  # when it will be allowed, where the limits say (outside --hours)
    blockers: frozenset[str] = frozenset()  # which limits hold: "hours", "gpu-busy", "temp:0", ...
    notes: tuple[str, ...] = ()  # limits that cannot be enforced on this machine, and why
    at: datetime | None = None  # the local time of the reading it was made on


def check(limits: HostLimits, reading: HostReading, *, previous: Verdict | None = None) -> Verdict:
    """May work run now? `previous` is the last verdict: a cap it held on holds until the reading is
    below the cap less the hysteresis."""
    held = previous.blockers if previous is not None else frozenset()
    reasons: dict[str, str] = {}
    until: datetime | None = None
    notes: list[str] = list(reading.notes)

    if limits.hours:
        minute = reading.now.hour * 60 + reading.now.minute
        if not any(window.contains(minute) for window in limits.hours):
            reasons["hours"] = f"outside --hours {limits.hours_text}"
            until = _next_start(limits.hours, reading.now)

    if limits.max_cpu_load is not None:
        if reading.load_per_core is None:
            notes.append("the load average cannot be read here, so --max-cpu-load cannot apply")
        elif reading.load_per_core > limits.max_cpu_load:
            reasons["load"] = (
                f"CPU load {reading.load_per_core:.2f} per core, over --max-cpu-load {limits.max_cpu_load:g}"
            )

    if limits.watches_gpu and reading.gpu_missing is not None:
        notes.append(f"no GPU to watch ({reading.gpu_missing}), so {_gpu_limits(limits)} cannot apply")
    for gpu in reading.gpus:
        if limits.when is When.idle and gpu.others:
            reasons[f"gpu-busy:{gpu.index}"] = f"GPU {gpu.index} is in use by {_processes(gpu.others)}"
        _cap(
            reasons, notes, held, key=f"temp:{gpu.index}", value=gpu.temperature_c, cap=limits.max_gpu_temp_c,
            resume=limits.temp_resume_c, what=f"GPU {gpu.index}", unit="°C", option="--max-gpu-temp",
            unreadable="its temperature",
        )  # fmt: skip
        _cap(
            reasons, notes, held, key=f"power:{gpu.index}", value=gpu.power_w, cap=limits.max_gpu_power_w,
            resume=limits.power_resume_w, what=f"GPU {gpu.index}", unit="W", option="--max-gpu-power",
            unreadable="its power draw",
        )  # fmt: skip

    if limits.when is When.idle:
        if reading.user_idle_s is None:
            missing = reading.idle_missing or "no source"
            notes.append(f"the desktop's idle time cannot be read ({missing}); treating the desktop as idle")
        elif reading.user_idle_s < limits.idle_minutes * 60:
            reasons["desktop"] = (
                f"the desktop was used {_ago(reading.user_idle_s)} ago"
                f" (--when idle waits for {limits.idle_minutes:g} min without input)"
            )

    if not reasons:
        return Verdict(allowed=True, notes=tuple(notes), at=reading.now)
    # A time to show only when the clock alone holds work back: nothing else says when it will end.
    return Verdict(
        allowed=False,
        reason="; ".join(reasons.values()),
        until=until if set(reasons) == {"hours"} else None,
        blockers=frozenset(reasons),
        notes=tuple(notes),
        at=reading.now,
    )


def _cap(
    reasons: dict[str, str],
    notes: list[str],
    held: frozenset[str],
    *,
    key: str,
    value: float | None,
    cap: float | None,
    resume: float | None,
    what: str,
    unit: str,
    option: str,
    unreadable: str,
) -> None:
    if cap is None or resume is None:
        return
    if value is None:
        notes.append(f"{what} does not report {unreadable}, so {option} cannot apply to it")
        return
    if value > cap:
        reasons[key] = f"{what} at {value:.0f} {unit}, over {option} {cap:g}; resuming below {resume:g} {unit}"
    elif key in held and value >= resume:
        reasons[key] = f"{what} at {value:.0f} {unit}, cooling down from over {option} {cap:g}; resuming below {resume:g} {unit}"


def _gpu_limits(limits: HostLimits) -> str:
    named = [
        name
        for name, on in (
            ("--when idle's GPU check", limits.when is When.idle),
            ("--max-gpu-temp", limits.max_gpu_temp_c is not None),
            ("--max-gpu-power", limits.max_gpu_power_w is not None),
        )
        if on
    ]
    return " and ".join([", ".join(named[:-1]), named[-1]]) if len(named) > 1 else "".join(named)


def _processes(processes: tuple[GpuProcess, ...]) -> str:
    shown = [f"{p.name} (pid {p.pid})" if p.name else f"pid {p.pid}" for p in processes[:3]]
    more = f" and {len(processes) - 3} more" if len(processes) > 3 else ""
    return ", ".join(shown) + more


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _next_start(windows: tuple[HoursWindow, ...], now: datetime) -> datetime:
    minute = now.hour * 60 + now.minute
    wait = min((window.start - minute) % MINUTES_PER_DAY for window in windows)
    return now.replace(second=0, microsecond=0) + timedelta(minutes=wait)


# --- the gate the daemon holds --------------------------------------------------------------------


@dataclass
class HostGate:
    """Reads `probe` and decides, remembering the last verdict (the hysteresis state).

    `check_interval_s` is how often the host is looked at: while waiting between leases, and by the
    watch over a lease in progress. The main loop and that watch never check at the same time, but
    the lock keeps the state whole if they did.
    """

    limits: HostLimits
    probe: HostProbe
    check_interval_s: float = 5.0
    last: Verdict | None = field(default=None, init=False)
    _said: set[str] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def check(self) -> Verdict:
        with self._lock:
            self.last = check(self.limits, self.probe.read(), previous=self.last)
            return self.last

    def new_notes(self, verdict: Verdict) -> list[str]:
        """The verdict's notes not handed out before, each once in the gate's life."""
        with self._lock:
            fresh = [note for note in verdict.notes if note not in self._said]
            self._said.update(fresh)
            return fresh


def until_text(until: datetime, now: datetime) -> str:
    """'22:00' today, else 'Thu 22:00'."""
    return f"{until:%H:%M}" if until.date() == now.date() else f"{until:%a %H:%M}"
