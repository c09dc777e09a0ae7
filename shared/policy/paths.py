"""Verdicts on dotted paths (`torch.utils.cpp_extension.load_inline`) and on attribute names."""

from __future__ import annotations

from shared.policy.report import HARNESS_ACCESS, IMPORT_NOT_ALLOWED, MODULE_MONKEYPATCH
from shared.policy.rules import (
    ALLOWED_IMPORT_ROOTS,
    ALLOWED_PROJECT_PACKAGE,
    ATTRIBUTE_NAME_RULES,
    GLOBAL_HOOK_PREFIX,
    PATH_RULES,
    PRIVATE_ALLOWED,
    PRIVATE_ALLOWED_TORCH_PREFIX,
    REFUSED_MODULE_ATTRIBUTES,
    TORCH_LIBRARY_ALLOWED,
    TORCH_SUBMODULES_NAMED_LIKE_REFUSED,
    TORCH_UTILS_ALLOWED,
)

Verdict = tuple[str, str]  # (code, message)

# Segments from which a dotted path is judged afresh: the packages a chain can pass through again.
REENTRY_ROOTS: frozenset[str] = ALLOWED_IMPORT_ROOTS | {"shared"}


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def is_torch_class_named(path: str, names: frozenset[str]) -> bool:
    """`torch.Tensor`, `torch.nn.modules.linear.Module`...: torch re-exports classes under many paths."""
    parts = path.split(".")
    return parts[0] == "torch" and parts[-1] in names


def is_under(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or lies inside it, segment by segment."""
    return path == prefix or path.startswith(prefix + ".")


def classify_path(path: str) -> Verdict | None:
    """The first rule that refuses `path`, or None when it is allowed."""
    parts = path.split(".")
    return (
        _classify_rooted(parts, shown=path)
        or classify_reentry(parts, shown=path)
        or _classify_reached_module(parts)
        or _classify_private(parts)
    )


def classify_reentry(parts: list[str], *, shown: str) -> Verdict | None:
    """The rules again from each later segment that names a top-level package: modules expose the
    modules they import (`torch.nn.functional.torch` is torch), whatever the chain's root is."""
    for start in range(1, len(parts)):
        if parts[start] in REENTRY_ROOTS:
            verdict = _classify_rooted(parts[start:], shown=shown)
            if verdict is not None:
                return verdict
    return None


def is_module_name(path: str) -> bool:
    """A chain that ends in a top-level package's name (`F.torch`) is that package."""
    return path.split(".")[-1] in REENTRY_ROOTS


def _classify_rooted(parts: list[str], *, shown: str) -> Verdict | None:
    path = ".".join(parts)
    for rule in PATH_RULES:
        if is_under(path, rule.prefix):
            return rule.code, f"`{shown}` {rule.reason}"
    if parts[0] == "shared" and not is_under(path, ALLOWED_PROJECT_PACKAGE):
        return (
            HARNESS_ACCESS,
            f"`{shown}` is project code; a variant may import only {ALLOWED_PROJECT_PACKAGE}",
        )
    if is_under(path, "torch.utils") and len(parts) > 2 and parts[2] not in TORCH_UTILS_ALLOWED:
        allowed = ", ".join(sorted(TORCH_UTILS_ALLOWED))
        return IMPORT_NOT_ALLOWED, f"`{shown}` is not allowed; of torch.utils only {allowed} are"
    if is_under(path, "torch.library") and len(parts) > 2 and parts[2] not in TORCH_LIBRARY_ALLOWED:
        return (
            MODULE_MONKEYPATCH,
            f"`{shown}` can replace the kernels of existing operators; define new ones with torch.library.custom_op",
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


def _classify_private(parts: list[str]) -> Verdict | None:
    private = [p for p in parts[1:] if p.startswith("_") and not is_dunder(p)]
    if not private:
        return None
    path = ".".join(parts)
    if path in PRIVATE_ALLOWED:
        return None
    if parts[0] == "torch" and len(parts) == 2 and parts[1].startswith(PRIVATE_ALLOWED_TORCH_PREFIX):
        return None
    return HARNESS_ACCESS, f"`{path}` is private; private internals reach around this policy, use public APIs"


def classify_attribute_name(name: str) -> Verdict | None:
    """Attribute names refused whatever object they are read from."""
    if name in ATTRIBUTE_NAME_RULES:
        code, reason = ATTRIBUTE_NAME_RULES[name]
        return code, f"`.{name}` {reason}"
    if name.startswith(GLOBAL_HOOK_PREFIX):
        return (
            MODULE_MONKEYPATCH,
            f"`{name}` installs a hook on every module in the process, the harness's too",
        )
    return None
