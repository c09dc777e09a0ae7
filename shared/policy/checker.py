"""Runs the checks over every node of a parsed train.py, then the data caps over all of them.
README.md says what each one stops."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from shared.policy.checks import annotations as annotation_checks
from shared.policy.checks import attributes, calls, definitions, imports, names
from shared.policy.context import Context
from shared.policy.data import check_data
from shared.policy.report import Violation
from shared.policy.scopes import FUNCTIONS, Site


def find_violations(tree: ast.Module, source: str) -> list[Violation]:
    context = Context(tree)
    found = [found for site in context.sites for found in _check(context, site)]
    found.extend(check_data(source, (site.node for site in context.sites)))
    return found


def _check(context: Context, site: Site) -> Iterator[Violation]:
    node = site.node
    if isinstance(node, ast.expr) and annotation_checks.is_evaluated_annotation(site):
        yield from annotation_checks.check_annotation(context, site, node)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield from imports.check_import(site, node)
    elif isinstance(node, ast.Name):
        yield from names.check_name(context, site, node)
    elif isinstance(node, ast.Attribute):
        yield from attributes.check_attribute(context, site, node)
    elif isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
        yield from attributes.check_store(context, site, node, obj=node.value, attr=None)
    elif isinstance(node, ast.Call):
        yield from calls.check_call(context, site, node)
    elif isinstance(node, FUNCTIONS):
        yield from definitions.check_function_def(site, node)
    elif isinstance(node, ast.ClassDef):
        yield from definitions.check_class_def(context, site, node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield from attributes.check_string(context, site, node, node.value)
    elif isinstance(node, ast.MatchClass):
        yield from attributes.check_match_class(node)
    elif isinstance(node, ast.Global):
        for name in node.names:
            yield from names.check_binding(site, node, name, dynamic=True)
    elif isinstance(node, ast.Nonlocal):
        for name in node.names:
            yield from names.check_binding(site, node, name, dynamic=False)
    elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
        yield from names.check_binding(site, node, node.name)
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield from names.check_binding(site, node, node.rest)
