"""What this machine is, as the coordinator needs to know it: above all its hardware class.

A track is pinned to one hardware class because a fixed time budget makes results
hardware-specific, so the class must be the same string on every machine of one kind: the GPU
model and its marketed memory size, e.g. "h100-80gb", "rtx4090-24gb", "a100-40gb"; "cpu" without
CUDA. torch is imported only inside `probe`, so the CLI starts fast and `--help` never loads it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from shared.protocol import HardwareInfo

# Marketed memory sizes in GB. Drivers report a little less than the label (ECC, reserved memory),
# so the reported size is rounded up to the next label.
_MARKETED_GB = (4, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 80, 94, 96, 120, 141, 180, 192, 288)
# Words in device names that say nothing about the chip: vendor, product line, form factor.
_NOISE = re.compile(r"\b(nvidia|geforce|tesla|quadro|sxm\d*|pcie|nvl|hbm\d*e?|\d+\s*gb)\b")


def memory_label_gb(memory_bytes: int) -> int:
    """The marketed size for a device reporting `memory_bytes` (e.g. 79.6 GiB -> 80)."""
    gib = memory_bytes / 2**30
    for label in _MARKETED_GB:
        if gib <= label * 1.01:
            return label
    return round(gib)


def hardware_class_for(device_name: str, memory_bytes: int) -> str:
    """A stable slug for a GPU: model and marketed memory, e.g. "NVIDIA H100 80GB HBM3" -> "h100-80gb"."""
    model = _NOISE.sub(" ", device_name.lower().replace("-", " "))
    model = re.sub(r"[^a-z0-9]+", "", model) or "gpu"
    return f"{model}-{memory_label_gb(memory_bytes)}gb"


def _system_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _nvidia_driver() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ""
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def _triton_version() -> str:
    try:
        import triton
    except ImportError:
        return ""
    return str(getattr(triton, "__version__", ""))


def probe(device: str = "auto") -> HardwareInfo:
    """Describe this machine. `device` "cpu" reports the CPU class even where CUDA exists."""
    import torch

    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device == "cuda" and not use_cuda:
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    host = HardwareInfo(
        hardware_class="cpu",
        device_name="cpu",
        torch=str(torch.__version__),
        triton=_triton_version(),
        cpu_count=os.cpu_count() or 0,
        memory_bytes=_system_memory_bytes(),
    )
    if not use_cuda:
        return host
    props = torch.cuda.get_device_properties(0)
    return host.model_copy(
        update={
            "hardware_class": hardware_class_for(props.name, props.total_memory),
            "device_name": props.name,
            "driver": _nvidia_driver() or f"cuda {torch.version.cuda}",
        }
    )
