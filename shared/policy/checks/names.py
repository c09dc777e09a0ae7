"""Bare names: builtins that are refused, dunder names, and bindings that would hide a builtin."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from shared.policy.checks.attributes import check_chain
from shared.policy.context import Context, is_called, is_link, violation
from shared.policy.paths import is_dunder
from shared.policy.report import DUNDER_ACCESS, FORBIDDEN_CALL, Violation
from shared.policy.rules import ATTRIBUTE_BUILTINS, FORBIDDEN_BUILTINS, GUARDED_BUILTINS
from shared.policy.scopes import COMPREHENSIONS, Scope, Site

SLOTS = "__slots__"


def check_name(context: Context, site: Site, node: ast.Name) -> Iterator[Violation]:
    name = node.id
    if not isinstance(node.ctx, ast.Load):
        if name == SLOTS and site.in_class_body:
            yield from _check_slots(context, site, node)
            return
        dynamic = None
        if isinstance(site.parent, ast.NamedExpr):
            # A walrus in a comprehension binds in the scope around the comprehension.
            dynamic = not _outside_comprehensions(site.scopes)
        yield from check_binding(site, node, name, dynamic=dynamic)
    elif name in GUARDED_BUILTINS and context.is_builtin(site, name):
        yield from _check_builtin_use(site, node, name)
    elif is_dunder(name):
        if not (name == "__name__" and _is_main_guard(site)):
            yield violation(node, DUNDER_ACCESS, f"the dunder name `{name}` is not allowed")
    elif not is_link(site):
        yield from check_chain(context, site, node)


def check_binding(
    site: Site, node: ast.AST, name: str, *, dynamic: bool | None = None
) -> Iterator[Violation]:
    """A name bound at `site`: dynamic bindings (module or class level) may not hide a builtin."""
    if is_dunder(name) and name != "__future__":
        yield violation(node, DUNDER_ACCESS, f"binding the dunder name `{name}` is not allowed")
    elif name in GUARDED_BUILTINS and (site.binds_dynamically if dynamic is None else dynamic):
        yield violation(
            node,
            FORBIDDEN_CALL,
            f"`{name}` may be rebound only inside a function; at module or class level it would hide "
            "uses of the builtin from this check",
        )


def _check_slots(context: Context, site: Site, node: ast.Name) -> Iterator[Violation]:
    """`__slots__ = ("a", "b")` in a class body is plain Python; anything else named so is not."""
    statement = site.parent
    if (
        isinstance(statement, ast.Assign)
        and statement.targets == [node]
        and isinstance(context.site_of(statement).parent, ast.ClassDef)
        and _are_slot_names(statement.value)
    ):
        return
    yield violation(
        node,
        DUNDER_ACCESS,
        "`__slots__` may only be set by `__slots__ = ...` directly in a class body, to a literal "
        "string or a tuple or list of literal attribute names that are not dunders",
    )


def _are_slot_names(value: ast.expr) -> bool:
    items = value.elts if isinstance(value, (ast.Tuple, ast.List)) else [value]
    return all(
        isinstance(item, ast.Constant)
        and isinstance(item.value, str)
        and item.value.isidentifier()
        and not is_dunder(item.value)
        for item in items
    )


def _check_builtin_use(site: Site, node: ast.Name, name: str) -> Iterator[Violation]:
    called = is_called(site)
    if name in FORBIDDEN_BUILTINS:
        reason = FORBIDDEN_BUILTINS[name]
        message = (
            f"call to {name}() is not allowed: {reason}" if called else f"`{name}` is not allowed: {reason}"
        )
        yield violation(node, FORBIDDEN_CALL, message)
    elif called or site.in_annotation:
        return  # calls are judged whole by the call checks; annotations only name things
    elif name in ATTRIBUTE_BUILTINS:
        yield violation(
            node, FORBIDDEN_CALL, f"`{name}` may only be called directly, with a literal attribute name"
        )
    elif name == "type":
        yield violation(
            node, FORBIDDEN_CALL, "`type` may only be called as type(x) in a comparison; use isinstance()"
        )


def _is_main_guard(site: Site) -> bool:
    compare = site.parent
    if (
        not isinstance(compare, ast.Compare)
        or len(compare.ops) != 1
        or not isinstance(compare.ops[0], ast.Eq)
    ):
        return False
    return any(
        isinstance(o, ast.Constant) and o.value == "__main__" for o in [compare.left, *compare.comparators]
    )


def _outside_comprehensions(scopes: tuple[Scope, ...]) -> tuple[Scope, ...]:
    while scopes and isinstance(scopes[-1].node, COMPREHENSIONS):
        scopes = scopes[:-1]
    return scopes
