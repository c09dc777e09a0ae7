"""Kernel tests run the Triton kernels in Triton's CPU interpreter (fp32 only, no libdevice).

Triton chooses between its interpreter and its GPU compiler when a function is *decorated*: its
own `triton.language` functions when `triton` is first imported, ours when `shared.kernels` is. So
this file sets TRITON_INTERPRET=1 before importing them, and imports `shared.kernels` afresh if an
earlier test module imported it without the variable. It cannot redo `triton` itself; if something
imported that first (`torch._dynamo` does), it stops with the fix. It then removes the variable
again (if it set it), so that other tests in the same run, and the processes they start, keep the
fast plain-torch path on the CPU; the autouse fixture sets it back for the tests in this folder
(`shared.kernels.use_triton` reads it at call time).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

_SET_HERE = "TRITON_INTERPRET" not in os.environ
os.environ.setdefault("TRITON_INTERPRET", "1")

for _name in [name for name in sys.modules if name == "shared.kernels" or name.startswith("shared.kernels.")]:
    del sys.modules[_name]

import triton  # noqa: E402

import shared.kernels  # noqa: E402

if isinstance(triton.language.sum, triton.JITFunction) or not shared.kernels.KERNELS_INTERPRETED:
    raise RuntimeError(
        "Triton was imported for the GPU before tests/kernels/conftest.py could set TRITON_INTERPRET=1. "
        "Run `pytest tests/kernels` on its own, or set TRITON_INTERPRET=1 before anything imports triton "
        "(e.g. at the top of tests/conftest.py)."
    )
if _SET_HERE:
    del os.environ["TRITON_INTERPRET"]


@pytest.fixture(autouse=True)
def triton_interpreter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield
