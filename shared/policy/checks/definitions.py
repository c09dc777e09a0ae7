"""Function and class definitions: dunder methods, and the classes a variant may subclass."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from shared.policy.checks.names import check_binding
from shared.policy.context import Context, violation
from shared.policy.paths import is_dunder, is_torch_class_named, is_under, sparse_flag_position
from shared.policy.report import DUNDER_ACCESS, HARNESS_ACCESS, NATIVE_CODE, Violation
from shared.policy.rules import DUNDER_METHODS_ALLOWED, TENSOR_CLASS_NAMES, TORCH_BASES_ALLOWED
from shared.policy.scopes import Site


def check_function_def(site: Site, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[Violation]:
    if not is_dunder(node.name):
        yield from check_binding(site, node, node.name)
    elif not (site.in_class_body and node.name in DUNDER_METHODS_ALLOWED):
        allowed = ", ".join(sorted(DUNDER_METHODS_ALLOWED))
        yield violation(
            node, DUNDER_ACCESS, f"defining `{node.name}` is not allowed; a class may define only {allowed}"
        )


def check_class_def(context: Context, site: Site, node: ast.ClassDef) -> Iterator[Violation]:
    yield from check_binding(site, node, node.name)
    if any(isinstance(b, ast.Starred) for b in node.bases) or any(k.arg is None for k in node.keywords):
        yield violation(node, HARNESS_ACCESS, "class bases must be written out, not unpacked with * or **")
    for base in node.bases:
        path = context.names.resolve(base)
        if path is not None and sparse_flag_position(path) is not None:
            yield violation(
                base,
                NATIVE_CODE,
                f"subclassing `{path}` is not allowed: its constructor, called through super(), could "
                "ask for sparse gradients out of this check's sight; configure an instance instead",
            )
        elif path is not None and path.split(".")[0] == "torch" and not _is_allowed_torch_base(path):
            yield violation(
                base,
                HARNESS_ACCESS,
                f"subclassing `{path}` is not allowed: only torch.nn modules, torch.optim optimizers and "
                "torch.autograd.Function may be subclassed (a tensor subclass changes how the harness's "
                "own tensor operations behave)",
            )


def _is_allowed_torch_base(path: str) -> bool:
    if is_torch_class_named(path, TENSOR_CLASS_NAMES):
        return False
    return any(is_under(path, allowed) for allowed in TORCH_BASES_ALLOWED)
