"""`worker join --gpus`: one worker per GPU, each pinned to its device, under one supervising process.

Each chosen GPU gets a slot: a child `worker join` process with its own home (`<home>/gpu<N>`:
its own key, so each GPU is a worker of the volunteer's account, named `<name>-gpu<N>`; its own
state, outbox, runs and status.json) and `CUDA_VISIBLE_DEVICES` set to that one device, so its
leases, training processes and host limits see only it. The slots share the home's track data
(`gpu<N>/assets` links to `<home>/assets`, whose downloads worker.assets already serializes
between processes) and its worker.toml.

GPUs are numbered as CUDA numbers them with CUDA_DEVICE_ORDER=PCI_BUS_ID, which is how nvidia-smi
numbers them, and the children get that order unless the volunteer chose another. Where
CUDA_VISIBLE_DEVICES is already set, only its devices exist, numbered in its order, as CUDA does.

The supervisor holds the home's lock (so no single-GPU worker shares it), writes SLOTS_FILE for
`worker status`, prefixes each child's output line with `[gpu<N>]`, passes the first and second
SIGINT/SIGTERM on to every child (finish the current run; abort it), restarts nothing, and exits
when all children have: 0 if all did, else the first failing child's status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from worker.status import SLOTS_FILE, STATUS_FILE


class GpuSelectionError(ValueError):
    """A --gpus value that does not parse, or names a GPU this machine does not have."""


def parse_gpus(text: str) -> list[int] | Literal["all"]:
    """`all`, or comma-separated GPU numbers, e.g. "0,2" -> [0, 2]; each number once."""
    value = text.strip().lower()
    if value == "all":
        return "all"
    numbers: list[int] = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry.isdigit():
            raise GpuSelectionError(
                f"--gpus takes 'all' or GPU numbers separated by commas, e.g. 0,2 (not {text!r})"
            )
        if int(entry) in numbers:
            raise GpuSelectionError(f"--gpus names GPU {int(entry)} twice")
        numbers.append(int(entry))
    return numbers


def device_count() -> int:
    """How many GPUs this machine has: NVML's count, else torch's; 0 when neither sees one."""
    try:
        import pynvml

        nvml: Any = pynvml
        nvml.nvmlInit()
        try:
            return int(nvml.nvmlDeviceGetCount())
        finally:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()
    except Exception:  # no nvidia-ml-py, no driver: ask torch, which may know another way
        pass
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:
        return 0


def visible_devices(environ: Mapping[str, str], count: int) -> list[str]:
    """The devices a slot may be pinned to, as CUDA_VISIBLE_DEVICES entries, in CUDA's numbering."""
    narrowed = environ.get("CUDA_VISIBLE_DEVICES")
    if narrowed is not None:
        return [entry.strip() for entry in narrowed.split(",") if entry.strip()]
    return [str(index) for index in range(count)]


@dataclass(frozen=True)
class Slot:
    gpu: int  # the number given to --gpus
    device: str  # the CUDA_VISIBLE_DEVICES entry it is pinned to

    @property
    def label(self) -> str:
        return f"gpu{self.gpu}"


def choose_slots(selection: list[int] | Literal["all"], devices: Sequence[str]) -> list[Slot]:
    """One slot per chosen GPU; GpuSelectionError for a GPU that does not exist."""
    if not devices:
        raise GpuSelectionError("--gpus: this machine has no GPU that CUDA or NVML can see")
    if selection == "all":
        return [Slot(gpu=index, device=device) for index, device in enumerate(devices)]
    missing = [gpu for gpu in selection if gpu >= len(devices)]
    if missing:
        have = "GPU 0" if len(devices) == 1 else f"GPUs 0-{len(devices) - 1}"
        raise GpuSelectionError(f"--gpus: there is no GPU {missing[0]}; this machine has {have}")
    return [Slot(gpu=gpu, device=devices[gpu]) for gpu in selection]


def slot_env(slot: Slot, environ: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: the supervisor's, pinned to the slot's device, its output unbuffered."""
    return {
        **environ,
        "CUDA_DEVICE_ORDER": environ.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
        "CUDA_VISIBLE_DEVICES": slot.device,
        "PYTHONUNBUFFERED": "1",
    }


def prepare_slot_home(home: Path, slot: Slot) -> Path:
    """`<home>/gpu<N>`, sharing the home's track data and worker.toml through links."""
    slot_home = home / slot.label
    slot_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / "assets").mkdir(exist_ok=True)
    shared = ["assets", "worker.toml"] if (home / "worker.toml").exists() else ["assets"]
    for name in shared:
        link = slot_home / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(Path("..") / name)
    return slot_home


def write_slots_file(home: Path, slots: Sequence[Slot]) -> None:
    """Tell `worker status` which slot homes this home's workers publish in.

    A single worker's status.json left in the home would hide them (worker.status reads it first),
    so it goes; the caller holds the home's lock, so no worker is writing it.
    """
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(),
        "slots": [{"gpu": slot.gpu, "device": slot.device, "home": slot.label} for slot in slots],
    }
    with contextlib.suppress(FileNotFoundError):
        (home / STATUS_FILE).unlink()
    tmp = home / f".{SLOTS_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, home / SLOTS_FILE)


class Supervisor:
    """Runs one child per slot until all have exited (see the module docstring)."""

    def __init__(
        self,
        slots: Sequence[Slot],
        *,
        argv_for: Mapping[Slot, list[str]],
        env_for: Mapping[Slot, dict[str, str]],
        out: IO[str] | None = None,
    ) -> None:
        self.slots = list(slots)
        self.argv_for = argv_for
        self.env_for = env_for
        self.out = out or sys.stdout
        self._write = threading.RLock()  # also taken by the signal handler, on the main thread
        self._children: dict[Slot, subprocess.Popen[bytes]] = {}
        self._signals = 0

    def say(self, line: str) -> None:
        with self._write:
            self.out.write(line + "\n")
            self.out.flush()

    def _pump(self, slot: Slot, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(f"[{slot.label}] {raw.decode(errors='replace').rstrip()}")
        stream.close()

    def _forward(self, signum: int, _frame: object) -> None:
        self._signals += 1
        self.say(
            "stopping after the current runs (interrupt again to abort them)"
            if self._signals == 1
            else "aborting the current runs and exiting"
        )
        for child in self._children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

    def run(self) -> int:
        """Start every child, wait for all of them; 0 if all exited with 0, else the first failure's status."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = (
            {sig: signal.signal(sig, self._forward) for sig in (signal.SIGINT, signal.SIGTERM)}
            if in_main
            else {}
        )
        pumps: list[threading.Thread] = []
        try:
            for slot in self.slots:
                if self._signals:  # stopped while starting: the rest never start
                    break
                # A session of its own: a Ctrl-C on the terminal reaches the supervisor alone, which
                # passes it on once; otherwise each child would count it twice and abort its run.
                child = subprocess.Popen(
                    self.argv_for[slot],
                    env=self.env_for[slot],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                self._children[slot] = child
                assert child.stdout is not None
                pump = threading.Thread(
                    target=self._pump, args=(slot, child.stdout), name=f"out-{slot.label}"
                )
                pump.start()
                pumps.append(pump)
            codes = {slot: child.wait() for slot, child in self._children.items()}
        finally:
            for child in self._children.values():
                if child.poll() is None:  # the supervisor itself failed: leave no child behind
                    child.terminate()
                    child.wait()
            for pump in pumps:
                pump.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        for slot, code in codes.items():
            self.say(f"{slot.label}: worker exited with status {code}")
        failed = [code for code in codes.values() if code != 0]
        if not failed:
            return 0
        return failed[0] if failed[0] > 0 else 1
