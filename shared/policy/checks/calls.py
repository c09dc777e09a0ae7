"""Calls that need their arguments checked: getattr and friends, type(), torch.compile,
torch.library operator names, and library functions that build classes from data."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from shared.policy.checks.attributes import check_attribute_name, check_chain, check_store
from shared.policy.context import Context, is_link, violation
from shared.policy.paths import is_dunder
from shared.policy.report import FORBIDDEN_CALL, MODULE_MONKEYPATCH, NATIVE_CODE, Violation
from shared.policy.rules import (
    ATTRIBUTE_BUILTINS,
    ENUM_FACTORIES,
    GUARDED_BUILTINS,
    INDUCTOR_OPTIONS,
    RESERVED_OPERATOR_NAMESPACES,
    STRING_ATTRIBUTE_FUNCTIONS,
    TORCH_LIBRARY_OPERATOR_CALLS,
)
from shared.policy.scopes import Site
from shared.policy.syntax import is_literal_dict_within, is_literal_str, literal_getattr

_ARITY = {"getattr": (2, 3), "setattr": (3, 3), "delattr": (2, 2)}


def check_call(context: Context, site: Site, node: ast.Call) -> Iterator[Violation]:
    func = node.func
    if isinstance(func, ast.Name) and func.id in GUARDED_BUILTINS and context.is_builtin(site, func.id):
        if func.id in ATTRIBUTE_BUILTINS:
            yield from _check_attribute_builtin(context, site, node, func.id)
        elif func.id == "type" and not _is_type_comparison(site, node):
            yield violation(
                node, FORBIDDEN_CALL, "type() may only be used as type(x) in a comparison; use isinstance()"
            )
    else:
        path = context.names.resolve(func)
        if path in STRING_ATTRIBUTE_FUNCTIONS:
            yield from _check_string_attribute_function(node, path)
        elif path in ENUM_FACTORIES:
            yield violation(
                node,
                FORBIDDEN_CALL,
                f"{path}() builds a class from names given as data; write an enum as a class",
            )
        elif path == "torch.compile":
            yield from _check_compile_arguments(node)
        elif path in TORCH_LIBRARY_OPERATOR_CALLS:
            yield from _check_operator_name(context, node, path)
    if literal_getattr(node) is not None and not is_link(site):
        yield from check_chain(context, site, node)


def _check_attribute_builtin(
    context: Context, site: Site, node: ast.Call, function: str
) -> Iterator[Violation]:
    low, high = _ARITY[function]
    args = node.args
    name = args[1] if len(args) > 1 else None
    if (
        node.keywords
        or any(isinstance(a, ast.Starred) for a in args)
        or not low <= len(args) <= high
        or not isinstance(name, ast.Constant)
        or not isinstance(name.value, str)
    ):
        yield violation(
            node,
            FORBIDDEN_CALL,
            f"{function}() needs a literal attribute name; a computed one could reach anything",
        )
        return
    if is_dunder(name.value):
        yield violation(
            node, FORBIDDEN_CALL, f"{function}() with the dunder name `{name.value}` is not allowed"
        )
        return
    yield from check_attribute_name(node, name.value)
    if function != "getattr":
        yield from check_store(context, site, node, obj=args[0], attr=name.value)


def _check_string_attribute_function(node: ast.Call, path: str) -> Iterator[Violation]:
    names = node.args if path == "operator.attrgetter" else node.args[:1]
    if (
        not names
        or not all(is_literal_str(n) for n in names)
        or (path == "operator.attrgetter" and node.keywords)
    ):
        yield violation(
            node,
            FORBIDDEN_CALL,
            f"{path}() needs literal attribute names; computed ones could reach anything",
        )
        return
    for name in names:
        assert isinstance(name, ast.Constant)
        for part in str(name.value).split("."):
            if is_dunder(part):
                yield violation(
                    node, FORBIDDEN_CALL, f"{path}() with the dunder name `{part}` is not allowed"
                )
            else:
                yield from check_attribute_name(node, part)


def _check_compile_arguments(node: ast.Call) -> Iterator[Violation]:
    for keyword in node.keywords:
        if keyword.arg is None:
            yield violation(
                node, NATIVE_CODE, "torch.compile() arguments must be written out, not unpacked with **"
            )
        elif keyword.arg == "backend" and not is_literal_str(keyword.value):
            yield violation(
                node,
                FORBIDDEN_CALL,
                "torch.compile() backend must be named by a string; a custom backend receives fx graphs, "
                "which generate Python source and run it",
            )
        elif keyword.arg == "options" and not is_literal_dict_within(keyword.value, INDUCTOR_OPTIONS):
            yield violation(
                node,
                NATIVE_CODE,
                f"torch.compile() options must be a literal dict of {', '.join(sorted(INDUCTOR_OPTIONS))}; "
                "other options can point the compiler at any program",
            )


def _check_operator_name(context: Context, node: ast.Call, path: str) -> Iterator[Violation]:
    first = node.args[0] if node.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        namespace, separator, _ = first.value.partition("::")
        if separator and namespace not in RESERVED_OPERATOR_NAMESPACES:
            return
    elif isinstance(first, ast.Name) and context.names.path_of(first.id) is None:
        return  # a custom operator defined in this file
    yield violation(
        node,
        MODULE_MONKEYPATCH,
        f"{path}() must name a new operator of this file as a literal `namespace::name`, "
        "outside torch's own namespaces such as aten",
    )


def _is_type_comparison(site: Site, node: ast.Call) -> bool:
    return (
        isinstance(site.parent, ast.Compare)
        and len(node.args) == 1
        and not node.keywords
        and not isinstance(node.args[0], ast.Starred)
    )
