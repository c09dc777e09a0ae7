"""What this machine is, as the coordinator needs to know it: above all its hardware class.

A track is pinned to one hardware class because a fixed time budget makes results
hardware-specific, so the class must be the same string on every machine of one kind, and
different for machines that run at different speeds. It is `<model>[-<form>][-<watts>w]-<memory>gb`:

- model: the GPU model without vendor or product-line words, e.g. "h100", "rtx4090", "a100".
- form: the form factor, which sets the power the chip may draw and so its speed. From the
  device name: "sxm" (SXM modules; also an H100/H200 that names its HBM memory and no other form,
  as "NVIDIA H100 80GB HBM3" does), "pcie", "nvl", "laptop" ("Laptop GPU", "Mobile", "Max-Q").
  Where the name says nothing (e.g. "NVIDIA H200", "NVIDIA B200"), the enforced power limit from
  NVML decides: 400 W (SXM_MIN_W) or more is "sxm" (no PCIe card that names no form draws that much;
  GeForce/RTX/TITAN cards come in one form and get none). Below it, or without NVML, no form part:
  the data-center parts that name no form (L40S, L4, T4, A10) are PCIe cards only.
- watts: laptops only, whose one name spans a threefold power range (e.g. 80-175 W for an RTX 4090
  Laptop GPU): the enforced power limit rounded to 5 W, where NVML reports it.
- memory: the marketed size.

e.g. "h100-sxm-80gb" (700 W), "h100-pcie-80gb" (350 W), "a100-sxm-40gb", "rtx4090-24gb",
"rtx4090-laptop-150w-16gb"; "cpu" without CUDA. Earlier releases left the form out ("h100-80gb"),
so a track pinned to such a class gets no worker of this release.

torch is imported only inside `probe`, and pynvml only there too, so the CLI starts fast and
`--help` never loads them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from typing import Any

from shared.protocol import HardwareInfo

# Marketed memory sizes in GB. Drivers report a little less than the label (ECC, reserved memory),
# so the reported size is rounded up to the next label.
_MARKETED_GB = (4, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 80, 94, 96, 120, 141, 180, 192, 288)
# Words in device names that say nothing about the chip: vendor, product line, form factor, memory.
_NOISE = re.compile(
    r"\b(nvidia|geforce|tesla|quadro|sxm\d*|pcie|nvl|hbm\d*e?|\d+\s*gb|laptop|mobile|max\s*q|gpu)\b"
)
# The form factor a device name states, first match wins.
_FORMS = (
    ("laptop", re.compile(r"\b(laptop|mobile|max\s*q)\b")),
    ("nvl", re.compile(r"\bnvl\b")),
    ("pcie", re.compile(r"\bpcie\b")),
    ("sxm", re.compile(r"\bsxm\d*\b")),
)
# Product lines that come in one form factor only, so a power limit says nothing about the form.
_ONE_FORM = re.compile(r"\b(geforce|rtx|gtx|titan|quadro)\b")
# H100/H200 SXM modules name their memory and nothing else ("NVIDIA H100 80GB HBM3"); the PCIe and
# NVL cards say so in their names.
_HBM = re.compile(r"\bhbm\d*e?\b")
SXM_MIN_W = 400.0  # SXM/OAM modules are rated 400-1000 W; the PCIe cards that name no form, 350 W at most


def memory_label_gb(memory_bytes: int) -> int:
    """The marketed size for a device reporting `memory_bytes` (e.g. 79.6 GiB -> 80)."""
    gib = memory_bytes / 2**30
    for label in _MARKETED_GB:
        if gib <= label * 1.01:
            return label
    return round(gib)


def form_factor(device_name: str, power_limit_w: float | None = None) -> str | None:
    """The form factor: "sxm", "pcie", "nvl" or "laptop" (see the module docstring); None when nothing tells."""
    name = device_name.lower().replace("-", " ")
    for form, pattern in _FORMS:
        if pattern.search(name):
            return form
    if _ONE_FORM.search(name):
        return None
    if _HBM.search(name) or (power_limit_w is not None and power_limit_w >= SXM_MIN_W):
        return "sxm"
    return None


def hardware_class_for(device_name: str, memory_bytes: int, *, power_limit_w: float | None = None) -> str:
    """A stable slug for a GPU, e.g. "NVIDIA H100 80GB HBM3" -> "h100-sxm-80gb" (see the module docstring).

    `power_limit_w` is the enforced power limit NVML reports, None where it is unknown.
    """
    model = _NOISE.sub(" ", device_name.lower().replace("-", " "))
    model = re.sub(r"[^a-z0-9]+", "", model) or "gpu"
    parts = [model]
    form = form_factor(device_name, power_limit_w)
    if form is not None:
        parts.append(form)
    if form == "laptop" and power_limit_w is not None and power_limit_w > 0:
        parts.append(f"{5 * round(power_limit_w / 5)}w")
    parts.append(f"{memory_label_gb(memory_bytes)}gb")
    return "-".join(parts)


def enforced_power_limit_w(*, uuid: str | None, environ: dict[str, str] | None = None) -> float | None:
    """The enforced power limit of the GPU CUDA calls device 0, in W, from NVML; None where NVML cannot say.

    The device is found by its UUID (CUDA numbers devices its own way), else as the first entry of
    CUDA_VISIBLE_DEVICES, else as NVML's device 0.
    """
    try:
        import pynvml
    except ImportError:
        return None
    nvml: Any = pynvml
    try:
        nvml.nvmlInit()
    except Exception:  # NVMLError: no library or no driver
        return None
    try:
        if uuid:
            handle = nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        else:
            visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES", "0")
            first = visible.split(",")[0].strip() or "0"
            handle = (
                nvml.nvmlDeviceGetHandleByIndex(int(first))
                if first.isdigit()
                else nvml.nvmlDeviceGetHandleByUUID(first)
            )
        return float(nvml.nvmlDeviceGetEnforcedPowerLimit(handle)) / 1000.0
    except Exception:  # NVMLError_NotSupported and friends, or a device NVML does not list
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


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
    uuid = getattr(props, "uuid", None)
    power_limit_w = enforced_power_limit_w(uuid=str(uuid) if uuid is not None else None)
    return host.model_copy(
        update={
            "hardware_class": hardware_class_for(props.name, props.total_memory, power_limit_w=power_limit_w),
            "device_name": props.name,
            "driver": _nvidia_driver() or f"cuda {torch.version.cuda}",
        }
    )
