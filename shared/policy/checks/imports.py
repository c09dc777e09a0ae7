"""Import statements: the allowlist, refused submodules, star imports, and what they bind."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from shared.policy.checks.names import check_binding
from shared.policy.context import violation
from shared.policy.paths import Verdict, classify_attribute_name, classify_path, is_dunder, is_under
from shared.policy.report import DUNDER_ACCESS, IMPORT_NOT_ALLOWED, MODULE_MONKEYPATCH, STAR_IMPORT, Violation
from shared.policy.rules import ALLOWED_IMPORT_ROOTS, ALLOWED_PROJECT_PACKAGE, REFUSED_IMPORT_ROOTS
from shared.policy.scopes import Site, bound_name


def check_import(site: Site, node: ast.Import | ast.ImportFrom) -> Iterator[Violation]:
    if site.in_class_body:
        yield violation(
            node,
            MODULE_MONKEYPATCH,
            "imports in a class body make what they import a class attribute, out of this check's sight",
        )
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield from _module_violations(node, alias.name)
            yield from _check_import_binding(site, node, alias)
        return
    if node.level:
        yield violation(
            node, IMPORT_NOT_ALLOWED, "relative imports are not allowed; a variant is a single file"
        )
        return
    module = node.module or ""
    # `from shared import kernels` names the allowed package through its refused parent.
    names_are_packages = module != ALLOWED_PROJECT_PACKAGE and is_under(ALLOWED_PROJECT_PACKAGE, module)
    module_refused = [] if names_are_packages else list(_module_violations(node, module))
    yield from module_refused
    for alias in node.names:
        if alias.name == "*":
            yield violation(
                node, STAR_IMPORT, f"`from {module} import *` hides which names it binds; import them by name"
            )
            continue
        yield from _check_import_binding(site, node, alias)
        path = f"{module}.{alias.name}"
        if names_are_packages:
            yield from _module_violations(node, path)
        elif not module_refused:
            verdict = classify_path(path) or classify_attribute_name(alias.name)
            if verdict is not None:
                yield violation(node, *verdict)


def _module_violations(node: ast.AST, path: str) -> Iterator[Violation]:
    root = path.split(".")[0]
    verdict: Verdict | None
    if root in REFUSED_IMPORT_ROOTS:
        code, reason = REFUSED_IMPORT_ROOTS[root]
        verdict = (code, f"`{path}` {reason}")
    else:
        verdict = classify_path(path)
    if verdict is None and root not in ALLOWED_IMPORT_ROOTS and not is_under(path, ALLOWED_PROJECT_PACKAGE):
        allowed = ", ".join(sorted(ALLOWED_IMPORT_ROOTS - {"__future__"}))
        verdict = (
            IMPORT_NOT_ALLOWED,
            f"`{path}` is not on the import allowlist ({allowed}, {ALLOWED_PROJECT_PACKAGE})",
        )
    if verdict is not None:
        yield violation(node, *verdict)


def _check_import_binding(site: Site, node: ast.AST, alias: ast.alias) -> Iterator[Violation]:
    name = bound_name(alias)
    if is_dunder(alias.name.split(".")[-1]) and name != "__future__":
        yield violation(node, DUNDER_ACCESS, f"importing the dunder name `{alias.name}` is not allowed")
    yield from check_binding(site, node, name)
