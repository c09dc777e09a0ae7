"""Calls that need their arguments checked: getattr and friends, type(), torch.compile,
torch.library operator names, functools.wraps, object dtypes, and library functions that build
classes from data."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from shared.policy.checks.attributes import WRAPS_MESSAGE, check_attribute_name, check_chain, check_store
from shared.policy.context import Context, is_link, violation
from shared.policy.paths import canonical_path, is_dunder, sparse_flag_position
from shared.policy.report import FORBIDDEN_CALL, MODULE_MONKEYPATCH, NATIVE_CODE, Violation
from shared.policy.rules import (
    ATTRIBUTE_BUILTINS,
    ENUM_FACTORIES,
    GUARDED_BUILTINS,
    INDUCTOR_OPTIONS,
    OBJECT_DTYPE_CODES,
    OBJECT_DTYPE_REASON,
    RESERVED_OPERATOR_NAMESPACES,
    SPARSE_REASON,
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
        elif path == "functools.wraps":
            yield from _check_wraps(site, node)
    yield from _check_object_dtype(context, site, node)
    yield from _check_sparse_flag(context, node)
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


def _check_wraps(site: Site, node: ast.Call) -> Iterator[Violation]:
    """@functools.wraps(f) on a function defined here copies f's name, doc and attributes onto it;
    `assigned=`/`updated=` name other attributes (`__code__`), and a call can copy onto any object."""
    if (
        site.field == "decorator_list"
        and len(node.args) == 1
        and not isinstance(node.args[0], ast.Starred)
        and not node.keywords
    ):
        return
    yield violation(node, FORBIDDEN_CALL, WRAPS_MESSAGE)


# Methods of numpy arrays whose first argument is a dtype.
_DTYPE_METHODS = frozenset({"astype", "view"})


def _check_object_dtype(context: Context, site: Site, node: ast.Call) -> Iterator[Violation]:
    """`dtype=object`, `np.empty(3, "O")`, `a.astype(object)`: numpy's object dtype, spelled out."""
    candidates = [k.value for k in node.keywords if k.arg == "dtype"]
    func = node.func
    path = context.names.resolve(func)
    canonical = None if path is None else canonical_path(path)
    if canonical == "numpy.dtype":
        candidates += node.args
    elif canonical is not None and canonical.split(".")[0] == "numpy":
        candidates += node.args[1:]  # the first is the data or the shape; a dtype comes later
    elif isinstance(func, ast.Attribute) and func.attr in _DTYPE_METHODS and path is None:
        candidates += node.args[:1]
    for candidate in candidates:
        if _names_object_dtype(context, site, candidate):
            yield violation(node, NATIVE_CODE, f"numpy's object dtype {OBJECT_DTYPE_REASON}")
            return


def _names_object_dtype(context: Context, site: Site, node: ast.expr) -> bool:
    """Whether a dtype expression names the object dtype anywhere in it: `object`, "O", a field of a
    structured dtype (`[("a", "O")]`, "i8,O")."""
    for part in ast.walk(node):
        if isinstance(part, ast.Name) and part.id == "object" and context.is_builtin(site, "object"):
            return True
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            for field in part.value.split(","):
                code = field.strip().lstrip("|=<>").rsplit(")", 1)[-1].strip()
                if code in OBJECT_DTYPE_CODES:
                    return True
    return False


def _check_sparse_flag(context: Context, node: ast.Call) -> Iterator[Violation]:
    """`sparse=True`, or an embedding layer given `sparse` positionally: sparse gradients."""
    flagged = any(
        k.arg == "sparse" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
        for k in node.keywords
    )
    position = sparse_flag_position(context.names.resolve(node.func))
    if position is not None:
        unpacked = any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        )
        flagged = flagged or unpacked or len(node.args) > position
    if flagged:
        yield violation(
            node,
            NATIVE_CODE,
            f"sparse=True {SPARSE_REASON}; an embedding layer's arguments from `sparse` on must be "
            "written out, by keyword",
        )


def _is_type_comparison(site: Site, node: ast.Call) -> bool:
    return (
        isinstance(site.parent, ast.Compare)
        and len(node.args) == 1
        and not node.keywords
        and not isinstance(node.args[0], ast.Starred)
    )
