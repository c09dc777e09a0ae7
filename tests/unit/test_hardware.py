"""The hardware class: one stable slug per GPU model and memory size, "cpu" without CUDA."""

from __future__ import annotations

import pytest

from worker.hardware import hardware_class_for, probe

GIB = 2**30


@pytest.mark.parametrize(
    ("name", "memory_bytes", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", int(79.2 * GIB), "h100-80gb"),
        ("NVIDIA H200", int(139.8 * GIB), "h200-141gb"),
        ("NVIDIA A100-SXM4-40GB", int(39.4 * GIB), "a100-40gb"),
        ("NVIDIA A100 80GB PCIe", int(79.1 * GIB), "a100-80gb"),
        ("NVIDIA GeForce RTX 4090", int(23.6 * GIB), "rtx4090-24gb"),
        ("Tesla T4", int(14.7 * GIB), "t4-16gb"),
        ("NVIDIA L40S", int(44.4 * GIB), "l40s-48gb"),
    ],
)
def test_gpu_names_and_memory_map_to_stable_classes(name: str, memory_bytes: int, expected: str) -> None:
    assert hardware_class_for(name, memory_bytes) == expected


def test_asking_for_the_cpu_reports_the_cpu_class_with_versions() -> None:
    info = probe("cpu")

    assert (info.hardware_class, info.device_name) == ("cpu", "cpu")
    assert info.torch and info.cpu_count >= 1 and info.memory_bytes > 0
