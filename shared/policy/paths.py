"""Verdicts on dotted paths (`torch.utils.cpp_extension.load_inline`) and on attribute names."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

from shared.policy.library import MODULE_ALIASES, MODULES
from shared.policy.report import HARNESS_ACCESS, IMPORT_NOT_ALLOWED, MODULE_MONKEYPATCH, NATIVE_CODE
from shared.policy.rules import (
    ALLOWED_IMPORT_ROOTS,
    ALLOWED_PROJECT_PACKAGE,
    ATTRIBUTE_NAME_RULES,
    GLOBAL_HOOK_PREFIX,
    PATH_RULES,
    PRIVATE_ALLOWED,
    PRIVATE_ALLOWED_TORCH_PREFIX,
    RAW_BUFFER_CLASS_NAMES,
    REFUSED_MODULE_ATTRIBUTES,
    REFUSED_UNDER_ANY_PACKAGE,
    SPARSE_FLAG_POSITIONS,
    SPARSE_NAME,
    SPARSE_NAMES_ALLOWED,
    SPARSE_REASON,
    TORCH_LIBRARY_ALLOWED,
    TORCH_SUBMODULES_NAMED_LIKE_REFUSED,
    TORCH_UTILS_ALLOWED,
)

Verdict = tuple[str, str]  # (code, message)
T = TypeVar("T")

# Verdicts on paths are pure functions of the path, and variants name the same few hundred paths
# (torch.nn.functional.relu...) again and again: the coordinator checks every explored variant.
# Only paths of ordinary length are kept, so that variants full of long made-up chains cannot fill
# the coordinator's memory: at most PATH_CACHE_SIZE entries of CACHED_PATH_CHARS each.
PATH_CACHE_SIZE = 8192
CACHED_PATH_CHARS = 200


def _cached_for_short_paths(judge: Callable[[str], T]) -> Callable[[str], T]:
    cached = lru_cache(maxsize=PATH_CACHE_SIZE)(judge)

    @wraps(judge)
    def judged(path: str) -> T:
        return cached(path) if len(path) <= CACHED_PATH_CHARS else judge(path)

    judged.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return judged

# Segments from which a dotted path is judged afresh: the packages a chain can pass through again.
REENTRY_ROOTS: frozenset[str] = ALLOWED_IMPORT_ROOTS | {"shared"}

# The rules that also refuse their last name under any package path, by that name.
_RULES_BY_NAME = {
    rule.prefix.rsplit(".", 1)[-1]: rule for rule in PATH_RULES if rule.prefix in REFUSED_UNDER_ANY_PACKAGE
}


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def is_torch_class_named(path: str, names: frozenset[str]) -> bool:
    """`torch.Tensor`, `torch.nn.modules.linear.Module`...: torch re-exports classes under many paths."""
    parts = path.split(".")
    return parts[0] == "torch" and parts[-1] in names


def is_raw_buffer_class(path: str) -> bool:
    """`numpy.ndarray` and `numpy.recarray`, under any numpy path that re-exports them."""
    parts = canonical_path(path).split(".")
    return parts[0] == "numpy" and parts[-1] in RAW_BUFFER_CLASS_NAMES


def sparse_flag_position(path: str | None) -> int | None:
    """How many positional arguments come before `sparse` in a torch embedding callable so named
    (nn.Embedding, F.embedding, torch.ops.aten.embedding...), or None for any other path."""
    if path is None:
        return None
    parts = canonical_path(path).split(".")
    return SPARSE_FLAG_POSITIONS.get(parts[-1]) if parts[0] == "torch" else None


def is_under(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or lies inside it, segment by segment."""
    return path == prefix or path.startswith(prefix + ".")


@_cached_for_short_paths
def classify_path(path: str) -> Verdict | None:
    """The first rule that refuses `path`, or None when it is allowed: judged as written, then
    under the name the library gives it (`numpy.matrixlib.defmatrix.N.np.load` is `numpy.load`)."""
    verdict = _classify(path.split("."), shown=f"`{path}`")
    canonical = canonical_path(path)
    if verdict is None and canonical != path:
        verdict = _classify(canonical.split("."), shown=f"`{path}` (`{canonical}`)")
    return verdict


@_cached_for_short_paths
def canonical_path(path: str) -> str:
    """`path` with every module it passes through under the name that module defines itself by.

    Modules import others under other names (`import torch.nn.functional as F`, `numpy.emath` is
    `numpy.lib.scimath`), and each of those names is a way to reach the module again: the rules
    are written for the real names. library.py lists the aliases of the installed libraries; a
    segment that names a top-level package and is not a submodule of the same name is that package.
    """
    parts = path.split(".")
    current = parts[0]
    for part in parts[1:]:
        written = f"{current}.{part}"
        if written in MODULE_ALIASES:
            current = MODULE_ALIASES[written]
        elif part in REENTRY_ROOTS and written not in MODULES:
            current = part
        else:
            current = written
    return current


def is_library_module(path: str) -> bool:
    """Whether `path` is a module of the allowed libraries (by library.py), under any name."""
    canonical = canonical_path(path)
    parts = canonical.split(".")
    return (
        canonical in MODULES
        or canonical in _ALIAS_TARGETS
        or parts[-1] in REENTRY_ROOTS
        # torch.ops.aten, torch.classes.my_ns: operator namespaces, modules made on first use.
        or (len(parts) == 3 and parts[0] == "torch" and parts[1] in ("ops", "classes"))
    )


_ALIAS_TARGETS = frozenset(MODULE_ALIASES.values())


def _classify(parts: list[str], *, shown: str) -> Verdict | None:
    return (
        _classify_rooted(parts, shown=shown)
        or classify_reentry(parts, shown=shown)
        or _classify_reached_module(parts)
        or _classify_private(parts, shown=shown)
    )


def classify_reentry(parts: list[str], *, shown: str) -> Verdict | None:
    """The rules again from each later segment that names a top-level package: modules expose the
    modules they import (`torch.nn.functional.torch` is torch), whatever the chain's root is."""
    for start in range(1, len(parts)):
        if parts[start] in REENTRY_ROOTS:
            suffix = parts[start:]
            verdict = _classify_rooted(suffix, shown=shown)
            canonical = canonical_path(".".join(suffix)).split(".")
            if verdict is None and canonical != suffix:
                verdict = _classify_rooted(canonical, shown=shown) or _classify_private(
                    canonical, shown=shown
                )
            if verdict is not None:
                return verdict
    return None


def _classify_rooted(parts: list[str], *, shown: str) -> Verdict | None:
    path = ".".join(parts)
    for rule in PATH_RULES:
        if is_under(path, rule.prefix):
            return rule.code, f"{shown} {rule.reason}"
    for part in parts[1:]:
        if part in _RULES_BY_NAME:
            rule = _RULES_BY_NAME[part]
            return rule.code, f"{shown} is `{rule.prefix}`, which {rule.reason}"
    if parts[0] == "shared" and not is_under(path, ALLOWED_PROJECT_PACKAGE):
        return (
            HARNESS_ACCESS,
            f"{shown} is project code; a variant may import only {ALLOWED_PROJECT_PACKAGE}",
        )
    if is_under(path, "torch.utils") and len(parts) > 2 and parts[2] not in TORCH_UTILS_ALLOWED:
        allowed = ", ".join(sorted(TORCH_UTILS_ALLOWED))
        return IMPORT_NOT_ALLOWED, f"{shown} is not allowed; of torch.utils only {allowed} are"
    if is_under(path, "torch.library") and len(parts) > 2 and parts[2] not in TORCH_LIBRARY_ALLOWED:
        return (
            MODULE_MONKEYPATCH,
            f"{shown} can replace the kernels of existing operators; define new ones with torch.library.custom_op",
        )
    return None


def classify_reached_module(parts: list[str], *, shown: str) -> Verdict | None:
    """A segment that names a refused module, on an object of unknown origin (`obj.os`)."""
    for index in range(1, len(parts)):
        part = parts[index]
        if (
            part in REFUSED_MODULE_ATTRIBUTES
            and part not in ATTRIBUTE_NAME_RULES  # refused on any object, with its own reason
            and f"{parts[index - 1]}.{part}" not in TORCH_SUBMODULES_NAMED_LIKE_REFUSED
        ):
            return (
                IMPORT_NOT_ALLOWED,
                f"{shown} reaches a module that may not be imported ({part}), through another object",
            )
    return None


def _classify_reached_module(parts: list[str]) -> Verdict | None:
    for index in range(1, len(parts)):
        prefix = ".".join(parts[: index + 1])
        if parts[index] in REFUSED_MODULE_ATTRIBUTES and prefix not in TORCH_SUBMODULES_NAMED_LIKE_REFUSED:
            return (
                IMPORT_NOT_ALLOWED,
                f"`{prefix}` reaches a module that may not be imported ({parts[index]}), through another module",
            )
    return None


def _classify_private(parts: list[str], *, shown: str) -> Verdict | None:
    private = [p for p in parts[1:] if p.startswith("_") and not is_dunder(p)]
    if not private:
        return None
    path = ".".join(parts)
    if path in PRIVATE_ALLOWED:
        return None
    if parts[0] == "torch" and len(parts) == 2 and parts[1].startswith(PRIVATE_ALLOWED_TORCH_PREFIX):
        return None
    return HARNESS_ACCESS, f"{shown} is private; private internals reach around this policy, use public APIs"


def classify_attribute_name(name: str) -> Verdict | None:
    """Attribute names refused whatever object they are read from."""
    if name in ATTRIBUTE_NAME_RULES:
        code, reason = ATTRIBUTE_NAME_RULES[name]
        return code, f"`.{name}` {reason}"
    if SPARSE_NAME in name and name not in SPARSE_NAMES_ALLOWED:
        return NATIVE_CODE, f"`.{name}` {SPARSE_REASON}"
    if name.startswith(GLOBAL_HOOK_PREFIX):
        return (
            MODULE_MONKEYPATCH,
            f"`{name}` installs a hook on every module in the process, the harness's too",
        )
    return None
