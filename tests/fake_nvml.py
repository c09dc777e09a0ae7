"""A stand-in for the `pynvml` module (nvidia-ml-py), for machines without an NVIDIA driver.

Install it with `monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())`: the worker imports
pynvml lazily, so it gets this. Each GPU is a `FakeGpu` a test changes while the worker reads it.
"""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass, field
from types import SimpleNamespace


class NVMLError(Exception):
    pass


@dataclass
class FakeGpu:
    temperature_c: int = 45
    power_mw: int | None = 90_000  # None: the GPU does not report it
    compute: list[int] = field(default_factory=list)  # pids
    graphics: list[int] = field(default_factory=list)
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    power_limit_mw: int | None = None  # the enforced power limit; None: the GPU does not report it
    reads: int = 0  # temperature reads: how often the worker has looked


class FakeNvml(types.ModuleType):
    NVML_TEMPERATURE_GPU = 0
    NVMLError = NVMLError

    def __init__(self, *gpus: FakeGpu, init_error: str | None = None) -> None:
        super().__init__("pynvml")
        self.gpus = list(gpus) or [FakeGpu()]
        self.init_error = init_error
        self.initialised = False
        self.lock = threading.Lock()

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise NVMLError("Not Found")

    def nvmlDeviceGetIndex(self, handle: FakeGpu) -> int:
        return self.gpus.index(handle)

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        with self.lock:
            handle.reads += 1
            return handle.temperature_c

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        if handle.power_mw is None:
            raise NVMLError("Not Supported")
        return handle.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeGpu) -> int:
        if handle.power_limit_mw is None:
            raise NVMLError("Not Supported")
        return handle.power_limit_mw

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeGpu) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=2**30) for pid in list(handle.compute)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeGpu) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=2**28) for pid in list(handle.graphics)]
