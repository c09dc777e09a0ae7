"""The harness's result: the JSON file the worker reads, and the `key: value` block for people.

The JSON's `metrics` keys are the fields of `shared.protocol.RunMetrics` (the harness cannot
import pydantic, so the names are kept equal by a test rather than by an import).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

OK = "ok"
CRASHED = "crashed"
REJECTED = "rejected"


@dataclass
class Metrics:
    val_bpb: float | None = None
    val_loss: float | None = None
    steps: int | None = None
    tokens: int | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    peak_memory_bytes: int | None = None
    num_params: int | None = None


@dataclass
class HarnessOutcome:
    status: str
    reason: str | None
    metrics: Metrics = field(default_factory=Metrics)
    env: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def environment(*, device: str, threads: int) -> dict[str, Any]:
    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:
        triton_version = None
    cuda = device.startswith("cuda")
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "numpy": np.__version__,
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "cuda": torch.version.cuda if cuda else None,
        "threads": threads,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_memory_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated(device))
    # ru_maxrss is kilobytes on Linux and bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def write_result(path: Path, outcome: HarnessOutcome) -> None:
    """Write atomically: a reader sees the whole result or none, never a torn file."""
    scratch = path.with_name(path.name + ".partial")
    with scratch.open("w", encoding="utf-8") as handle:
        json.dump(outcome.to_json(), handle, indent=2, sort_keys=True, allow_nan=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)


def summary_block(outcome: HarnessOutcome) -> str:
    """The `key: value` lines printed at the end, as karpathy/autoresearch's train.py prints them."""
    lines = ["---", f"status: {outcome.status}"]
    if outcome.reason:
        lines.append(f"reason: {outcome.reason}")
    for key, value in asdict(outcome.metrics).items():
        shown = "" if value is None else f"{value:.6f}" if isinstance(value, float) else str(value)
        lines.append(f"{key}: {shown}")
    return "\n".join(lines)
