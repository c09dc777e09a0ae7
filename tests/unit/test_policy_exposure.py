"""The policy against the installed libraries: what allowed modules expose as attributes.

Modules keep the modules they import as attributes (`torch.os`, `dataclasses.sys`), and some
re-export dangerous functions (`torch.xpu.cast` is ctypes'). The policy refuses these by name,
so a library upgrade can add one it does not know; these tests walk the real modules and fail
when that happens. Walking uses module `__dict__`s, so nothing is imported lazily.
"""

from __future__ import annotations

import builtins
import importlib
import types
from collections.abc import Iterator

import pytest

from shared.policy import check_source
from shared.policy.rules import ALLOWED_IMPORT_ROOTS, ALLOWED_PROJECT_PACKAGE, FORBIDDEN_BUILTINS

# Touching deprecated attributes (torch.distributed.reduce_op) warns; the walk only looks.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

DEPTH = 3
START = [*sorted(ALLOWED_IMPORT_ROOTS - {"__future__"}), "triton.language", ALLOWED_PROJECT_PACKAGE]

# Reachable, not importable, and harmless: nothing in them touches files, processes, memory or
# the interpreter's state.
HARMLESS_MODULES = frozenset({"re", "keyword", "textwrap", "ast", "contextvars", "bisect", "json"})

# Where a function must not come from, whatever name an allowed module gives it.
DANGEROUS_ORIGINS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "importlib",
        "_frozen_importlib",
        "_frozen_importlib_external",
        "os",
        "posix",
        "io",
        "_io",
        "subprocess",
        "_posixsubprocess",
        "pickle",
        "_pickle",
        "marshal",
        "sys",
        "socket",
        "_socket",
        "shutil",
        "tempfile",
        "runpy",
        "gc",
        "pdb",
        "mmap",
    }
)


def public_attributes() -> Iterator[tuple[str, object]]:
    """(dotted path, value) for every public attribute of the allowed modules, DEPTH levels down."""
    seen: set[int] = set()
    frontier = [(name, importlib.import_module(name)) for name in START]
    for _ in range(DEPTH):
        deeper = []
        for path, module in frontier:
            for name, value in list(vars(module).items()):
                if name.startswith("_"):
                    continue
                yield f"{path}.{name}", value
                is_allowed_module = isinstance(value, types.ModuleType) and _root(value.__name__) in _ALLOWED
                if is_allowed_module and id(value) not in seen:
                    seen.add(id(value))
                    deeper.append((f"{path}.{name}", value))
        frontier = deeper


_ALLOWED = ALLOWED_IMPORT_ROOTS | {"shared"}


def _root(dotted: str) -> str:
    return dotted.split(".")[0]


def use(path: str) -> str:
    return f"import {_root(path)}\nx = {path}\n"


@pytest.fixture(scope="module")
def attributes() -> list[tuple[str, object]]:
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    return list(public_attributes())


def test_every_module_reachable_through_an_allowed_one_is_allowed_refused_or_harmless(
    attributes: list[tuple[str, object]],
) -> None:
    leaks = [
        f"{path} is {value.__name__}"
        for path, value in attributes
        if isinstance(value, types.ModuleType)
        and _root(value.__name__) not in _ALLOWED
        and value.__name__ not in HARMLESS_MODULES
        and check_source(use(path)).ok
    ]
    assert leaks == []


def test_no_dangerous_function_is_reachable_under_another_name(attributes: list[tuple[str, object]]) -> None:
    forbidden_builtins = {id(getattr(builtins, name)) for name in FORBIDDEN_BUILTINS}
    leaks = []
    for path, value in attributes:
        origin = getattr(value, "__module__", None)
        dangerous = id(value) in forbidden_builtins or (
            callable(value) and isinstance(origin, str) and _root(origin) in DANGEROUS_ORIGINS
        )
        if dangerous and check_source(use(path)).ok:
            leaks.append(f"{path} is {origin}.{getattr(value, '__name__', '?')}")
    assert leaks == []


def test_the_walk_finds_the_exposures_it_exists_to_catch(attributes: list[tuple[str, object]]) -> None:
    paths = {path for path, _ in attributes}
    assert {"torch.os", "dataclasses.sys", "enum.bltns", "torch.nn.functional.torch"} <= paths
