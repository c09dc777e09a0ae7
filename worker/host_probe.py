"""What the host limits (worker.host_limits) are judged on, read from this machine.

Each source reads one thing and says once why it cannot: the GPUs through NVML (`nvidia-ml-py`,
imported only when a GPU limit is set; a missing library or driver means "no GPU to watch"), the
desktop's idle time (`xprintidle`, a command of the volunteer's choice, or terminal input), the
1-minute load average, and the local clock. Tests replace the sources, or the `pynvml` module.

This worker's own processes (the daemon and everything it started, the training included) never
count as "another process on the GPU", and their share of the load average is taken out of it.
NVML names processes by their pid in the host's pid namespace: a worker inside a container that
does not share the host's pids cannot tell its own training from someone else's there (see the
README).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from worker.execution.process_tree import descendants, stat_fields
from worker.host_limits import GpuProcess, GpuReading, HostLimits, HostReading, When

# Display servers and compositors draw the desktop on the GPU all the time: they never make it busy.
DESKTOP_PROCESSES = frozenset(
    {
        "Xorg", "X", "Xwayland", "gnome-shell", "kwin_x11", "kwin_wayland", "kwin", "sway", "Hyprland",
        "weston", "mutter", "cinnamon", "xfwm4", "picom", "compiz", "plasmashell",
    }
)  # fmt: skip
LOAD_WINDOW_S = 60.0  # the kernel's 1-minute load average decays with this time constant
IDLE_COMMAND_TIMEOUT_S = 5.0


def local_now() -> datetime:
    return datetime.now().astimezone()


# --- this worker's processes ----------------------------------------------------------------------


def own_pids(root: int | None = None) -> set[int]:
    """`root` (this process) and every process descended from it."""
    root = os.getpid() if root is None else root
    return {root, *descendants(root)}


def _runnable_threads(pids: Iterable[int]) -> int:
    """Threads of these processes that the load average counts now (running or in disk wait)."""
    count = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            fields = stat_fields(Path(f"/proc/{pid}/task/{tid}/stat"))
            if fields and fields[0] in ("R", "D"):
                count += 1
    return count


def _process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or None
    except OSError:
        return None  # another pid namespace, or gone


# --- GPUs ------------------------------------------------------------------------------------------


def _import_pynvml() -> ModuleType:
    import pynvml

    return pynvml


class NvmlGpus:
    """The GPUs this worker can use, through NVML: temperature, power and who else is on them.

    CUDA_VISIBLE_DEVICES narrows them, by NVML index or by UUID. `missing` says why there are none
    to watch: no `nvidia-ml-py`, no driver, no device.
    """

    def __init__(
        self,
        *,
        ignore: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
        own: Callable[[], set[int]] = own_pids,
        name_of: Callable[[int], str | None] = _process_name,
    ) -> None:
        self._ignore = DESKTOP_PROCESSES | set(ignore)
        self._environ = os.environ if environ is None else environ
        self._own = own
        self._name_of = name_of
        self._nvml: Any = None
        self._handles: list[tuple[int, Any]] | None = None
        self.missing: str | None = None
        self.notes: list[str] = []

    def _start(self) -> None:
        """Load NVML; tried again at each read until it works (a driver may be loaded later)."""
        self.missing = None
        try:
            nvml: Any = _import_pynvml()
        except ImportError:
            self.missing = "nvidia-ml-py is not installed"
            return
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError: no library, no driver; its subclasses are made at run time
            self.missing = f"NVML cannot start: {exc}"
            return
        self._nvml = nvml
        try:
            self._handles = self._visible(nvml)
        except Exception as exc:
            self.missing = f"NVML cannot list the GPUs: {exc}"
            self._handles = []
        if not self._handles and self.missing is None:
            self.missing = "NVML sees no GPU this worker may use"

    def _visible(self, nvml: Any) -> list[tuple[int, Any]]:
        wanted = self._environ.get("CUDA_VISIBLE_DEVICES")
        count = int(nvml.nvmlDeviceGetCount())
        if wanted is None:
            return [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        handles = []
        for entry in (e.strip() for e in wanted.split(",") if e.strip()):
            if entry.isdigit():
                if int(entry) >= count:
                    break  # CUDA stops at the first device that does not exist
                handles.append((int(entry), nvml.nvmlDeviceGetHandleByIndex(int(entry))))
            else:
                handle = nvml.nvmlDeviceGetHandleByUUID(entry)
                handles.append((int(nvml.nvmlDeviceGetIndex(handle)), handle))
        return handles

    def read(self) -> tuple[GpuReading, ...]:
        if self._handles is None:
            self._start()
        if not self._handles:
            return ()
        ours = self._own()
        return tuple(self._read_one(index, handle, ours) for index, handle in self._handles)

    def _read_one(self, index: int, handle: Any, ours: set[int]) -> GpuReading:
        nvml = self._nvml
        temperature = self._try(lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)))
        milliwatts = self._try(lambda: float(nvml.nvmlDeviceGetPowerUsage(handle)))
        others: dict[int, GpuProcess] = {}
        for listing in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                processes = getattr(nvml, listing)(handle)
            except Exception as exc:
                self._note(f"GPU {index}: NVML cannot list its processes ({exc}); only those it lists count")
                continue
            for process in processes:
                pid = int(process.pid)
                if pid in ours or pid in others:
                    continue
                name = self._name_of(pid)
                if name in self._ignore:
                    continue
                others[pid] = GpuProcess(pid=pid, name=name)
        return GpuReading(
            index=index,
            temperature_c=temperature,
            power_w=None if milliwatts is None else milliwatts / 1000.0,
            others=tuple(sorted(others.values(), key=lambda p: p.pid)),
        )

    @staticmethod
    def _try(read: Callable[[], float]) -> float | None:
        try:
            return read()
        except Exception:  # NVMLError_NotSupported and friends: this GPU does not say
            return None

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml, self._handles = None, None


# --- the desktop's idle time -----------------------------------------------------------------------


class IdleSource(Protocol):
    missing: str | None  # why the last read found nothing

    def read(self) -> float | None:
        """Seconds since the last input, or None when it cannot be told."""
        ...


class CommandIdleSource:
    """A command that prints the idle time in milliseconds, as `xprintidle` does."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.missing: str | None = None

    def read(self) -> float | None:
        try:
            done = subprocess.run(
                self.argv, capture_output=True, text=True, timeout=IDLE_COMMAND_TIMEOUT_S, check=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self.missing = f"{shlex.join(self.argv)} failed: {exc}"
            return None
        match = re.search(r"\d+", done.stdout)
        if match is None:
            self.missing = f"{shlex.join(self.argv)} printed no number of milliseconds"
            return None
        self.missing = None
        return int(match.group()) / 1000.0


class TtyIdleSource:
    """The newest keystroke on a terminal, as `w` counts idle time: the access time of tty devices."""

    def __init__(self, devices: Callable[[], list[Path]] | None = None, *, now: Callable[[], float] = time.time) -> None:
        self._devices = devices or _terminals
        self._now = now
        self.missing: str | None = None

    def read(self) -> float | None:
        latest = None
        for device in self._devices():
            try:
                atime = device.stat().st_atime
            except OSError:
                continue
            latest = atime if latest is None else max(latest, atime)
        if latest is None:
            self.missing = "no terminal to watch"
            return None
        self.missing = None
        return max(0.0, self._now() - latest)


def _terminals() -> list[Path]:
    dev = Path("/dev")
    ptys = [p for p in (dev / "pts").glob("*") if p.name.isdigit()]
    return ptys + [p for p in dev.glob("tty[0-9]*") if p.name[3:].isdigit()]


def choose_idle_source(
    idle_command: str | None, environ: Mapping[str, str] | None = None
) -> tuple[IdleSource | None, str | None]:
    """The best way this machine has to tell the desktop's idle time, and a note when it is a poor one."""
    environ = os.environ if environ is None else environ
    if idle_command:
        return CommandIdleSource(shlex.split(idle_command)), None
    xprintidle = shutil.which("xprintidle")
    if environ.get("DISPLAY") and xprintidle:
        return CommandIdleSource([xprintidle]), None
    if _terminals():
        return TtyIdleSource(), (
            "the desktop's idle time is read from terminal input only; for the mouse and keyboard of a"
            " graphical session, install xprintidle (with DISPLAY set) or set idle_command"
        )
    return None, "no xprintidle, no idle_command and no terminal"


# --- the load average -------------------------------------------------------------------------------


class LoadAverage:
    """The 1-minute load average per core, less this worker's own share of it.

    The kernel averages the number of runnable threads with a one-minute decay; the share of this
    worker's processes (a training on the CPU, above all) is estimated the same way from each read,
    so a CPU track's own training does not count as the host being busy.
    """

    def __init__(
        self,
        *,
        loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg,
        cores: int | None = None,
        own_runnable: Callable[[], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loadavg = loadavg
        self._cores = cores or os.cpu_count() or 1
        self._own_runnable = own_runnable or (lambda: _runnable_threads(own_pids() - {os.getpid()}))
        self._monotonic = monotonic
        self._own = 0.0
        self._at: float | None = None
        self.missing: str | None = None

    def read(self) -> float | None:
        now, runnable = self._monotonic(), self._own_runnable()
        if self._at is not None:
            decay = math.exp(-(now - self._at) / LOAD_WINDOW_S)
            self._own = self._own * decay + runnable * (1 - decay)
        self._at = now
        try:
            one_minute = self._loadavg()[0]
        except OSError as exc:
            self.missing = str(exc)
            return None
        return max(0.0, one_minute - self._own) / self._cores


# --- the probe ----------------------------------------------------------------------------------------


class SystemProbe:
    """A HostProbe from sources; a source left out is a limit not in force."""

    def __init__(
        self,
        *,
        gpus: NvmlGpus | None = None,
        idle: IdleSource | None = None,
        idle_note: str | None = None,
        load: LoadAverage | None = None,
        clock: Callable[[], datetime] = local_now,
        gpu_off: str | None = None,
    ) -> None:
        """`idle_note` is why the desktop's idle time is unknown when `idle` is None, else a caveat
        about the source; `gpu_off` is why no GPU is watched when `gpus` is None."""
        self.gpu_off = gpu_off
        self.gpus = gpus
        self.idle = idle
        self.idle_note = idle_note
        self.load = load
        self.clock = clock

    @classmethod
    def for_limits(
        cls,
        limits: HostLimits,
        *,
        watch_gpu: bool,
        idle_command: str | None = None,
        ignore_gpu_processes: Iterable[str] = (),
    ) -> SystemProbe:
        """Only the sources the limits need; `watch_gpu` is False for a worker that trains on the CPU."""
        gpus = NvmlGpus(ignore=ignore_gpu_processes) if limits.watches_gpu and watch_gpu else None
        idle, idle_note = choose_idle_source(idle_command) if limits.when is When.idle else (None, None)
        load = LoadAverage() if limits.max_cpu_load is not None else None
        gpu_off = None if watch_gpu else "this worker trains on the CPU"
        return cls(gpus=gpus, idle=idle, idle_note=idle_note, load=load, gpu_off=gpu_off)

    def read(self) -> HostReading:
        notes: list[str] = []
        gpus: tuple[GpuReading, ...] = ()
        gpu_missing = self.gpu_off
        if self.gpus is not None:
            gpus = self.gpus.read()
            gpu_missing = self.gpus.missing
            notes += self.gpus.notes
        user_idle_s, idle_missing = None, self.idle_note
        if self.idle is not None:
            user_idle_s = self.idle.read()
            if user_idle_s is None:
                idle_missing = self.idle.missing
            elif self.idle_note:
                notes.append(self.idle_note)
        load = self.load.read() if self.load is not None else None
        return HostReading(
            now=self.clock(),
            gpus=gpus,
            gpu_missing=gpu_missing,
            user_idle_s=user_idle_s,
            idle_missing=idle_missing,
            load_per_core=load,
            notes=tuple(notes),
        )

    def close(self) -> None:
        if self.gpus is not None:
            self.gpus.close()
