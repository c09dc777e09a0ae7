"""The hardware class: one stable slug per GPU model, form factor and memory size, "cpu" without CUDA."""

from __future__ import annotations

import sys

import pytest

from tests.fake_nvml import FakeGpu, FakeNvml
from worker.hardware import enforced_power_limit_w, hardware_class_for, probe

GIB = 2**30


@pytest.mark.parametrize(
    ("name", "memory_bytes", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", int(79.2 * GIB), "h100-sxm-80gb"),
        ("NVIDIA H100 PCIe", int(79.6 * GIB), "h100-pcie-80gb"),
        ("NVIDIA H100 NVL", int(93.1 * GIB), "h100-nvl-94gb"),
        ("NVIDIA H200", int(139.8 * GIB), "h200-141gb"),
        ("NVIDIA A100-SXM4-40GB", int(39.4 * GIB), "a100-sxm-40gb"),
        ("NVIDIA A100 80GB PCIe", int(79.1 * GIB), "a100-pcie-80gb"),
        ("NVIDIA A100-PCIE-40GB", int(39.4 * GIB), "a100-pcie-40gb"),
        ("NVIDIA GeForce RTX 4090", int(23.6 * GIB), "rtx4090-24gb"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", int(15.7 * GIB), "rtx4090-laptop-16gb"),
        ("NVIDIA GeForce RTX 3080 Ti Laptop GPU", int(15.7 * GIB), "rtx3080ti-laptop-16gb"),
        ("Tesla T4", int(14.7 * GIB), "t4-16gb"),
        ("NVIDIA L40S", int(44.4 * GIB), "l40s-48gb"),
    ],
)
def test_gpu_names_and_memory_map_to_stable_classes(name: str, memory_bytes: int, expected: str) -> None:
    assert hardware_class_for(name, memory_bytes) == expected


def test_h100_sxm_and_pcie_which_run_at_different_speeds_get_different_classes() -> None:
    sxm = hardware_class_for("NVIDIA H100 80GB HBM3", 80 * GIB, power_limit_w=700.0)
    pcie = hardware_class_for("NVIDIA H100 PCIe", 80 * GIB, power_limit_w=350.0)

    assert (sxm, pcie) == ("h100-sxm-80gb", "h100-pcie-80gb")
    assert hardware_class_for("NVIDIA H100 SXM5 80GB", 80 * GIB) == sxm


@pytest.mark.parametrize(
    ("name", "gib", "watts", "expected"),
    [
        # A name that states no form: a module's power limit says SXM.
        ("NVIDIA H200", 139.8, 700.0, "h200-sxm-141gb"),
        ("NVIDIA A100 40GB", 39.4, 400.0, "a100-sxm-40gb"),
        # A data-center PCIe card that names no form keeps its class.
        ("NVIDIA L40S", 44.4, 350.0, "l40s-48gb"),
        # What the name says wins over the power limit.
        ("NVIDIA H100 PCIe", 79.6, 400.0, "h100-pcie-80gb"),
        # Consumer cards come in one form, however much they may draw.
        ("NVIDIA GeForce RTX 5090", 31.4, 575.0, "rtx5090-32gb"),
        # Laptops of one name differ threefold in power: the limit is part of the class.
        ("NVIDIA GeForce RTX 4090 Laptop GPU", 15.7, 150.0, "rtx4090-laptop-150w-16gb"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", 15.7, 80.0, "rtx4090-laptop-80w-16gb"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", 15.7, 174.6, "rtx4090-laptop-175w-16gb"),
    ],
)
def test_the_enforced_power_limit_tells_apart_parts_of_one_name(
    name: str, gib: float, watts: float, expected: str
) -> None:
    assert hardware_class_for(name, int(gib * GIB), power_limit_w=watts) == expected


def test_every_class_fits_the_protocol_field() -> None:
    longest = hardware_class_for("NVIDIA GeForce RTX 4090 Laptop GPU", 288 * GIB, power_limit_w=175.0)
    assert len(longest) <= 64


def test_the_power_limit_is_read_from_nvml_for_the_device_cuda_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = (
        FakeGpu(uuid="GPU-aaaa", power_limit_mw=350_000),
        FakeGpu(uuid="GPU-bbbb", power_limit_mw=700_000),
    )
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(*gpus))

    assert enforced_power_limit_w(uuid="bbbb") == 700.0  # torch gives the UUID without its prefix
    assert enforced_power_limit_w(uuid=None, environ={"CUDA_VISIBLE_DEVICES": "1"}) == 700.0
    assert enforced_power_limit_w(uuid=None, environ={}) == 350.0


def test_no_power_limit_where_nvml_cannot_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(FakeGpu(power_limit_mw=None)))
    assert enforced_power_limit_w(uuid=None, environ={}) is None

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(init_error="Driver Not Loaded"))
    assert enforced_power_limit_w(uuid=None, environ={}) is None

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(FakeGpu(uuid="GPU-aaaa", power_limit_mw=1)))
    assert enforced_power_limit_w(uuid="cccc") is None  # a device NVML does not list


def test_asking_for_the_cpu_reports_the_cpu_class_with_versions() -> None:
    info = probe("cpu")

    assert (info.hardware_class, info.device_name) == ("cpu", "cpu")
    assert info.torch and info.cpu_count >= 1 and info.memory_bytes > 0
