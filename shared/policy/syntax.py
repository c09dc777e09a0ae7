"""Small questions about the shape of AST nodes, shared by the name table and the checks."""

from __future__ import annotations

import ast
import re
import threading

from shared.policy.paths import is_dunder

# CPython 3.11 can fail with a spurious "SystemError: AST constructor recursion depth mismatch" when
# two threads build ASTs at once (python/cpython#106905); the coordinator checks sources in request
# threads, so every parse here takes this lock.
_PARSING = threading.Lock()


def parse(source: str) -> ast.Module:
    """ast.parse, one thread at a time."""
    with _PARSING:
        return ast.parse(source, filename="train.py")


# Format fields ("{0.__class__}") read attributes by name: str.format is the lookup.
_FORMAT_FIELD = re.compile(r"\{([^{}]*)\}")
_WORD = re.compile(r"\w+")


def literal_getattr(node: ast.AST | None) -> tuple[ast.expr, str] | None:
    """`getattr(obj, "name")` or `getattr(obj, "name", default)` as (obj, "name"), else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and 2 <= len(node.args) <= 3
        and not node.keywords
        and not any(isinstance(a, ast.Starred) for a in node.args)
        and isinstance(name := node.args[1], ast.Constant)
        and isinstance(name.value, str)
    ):
        return node.args[0], name.value
    return None


def unchain(node: ast.AST) -> tuple[ast.AST, list[str]]:
    """A dotted chain as its root and attribute names: `F.nn.relu` is (F, ["nn", "relu"]).

    `getattr(x, "name")` with a literal counts as `x.name`.
    """
    attributes: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            attributes.append(node.attr)
            node = node.value
        elif (link := literal_getattr(node)) is not None:
            node, name = link
            attributes.append(name)
        else:
            return node, attributes[::-1]


def store_root(node: ast.AST) -> ast.AST:
    """The object an assignment target hangs from: `x` in `x.a[0].b` and `getattr(x, "a")[0]`."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif (link := literal_getattr(node)) is not None:
            node = link[0]
        else:
            return node


def is_literal_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def is_literal_dict_within(node: ast.expr, allowed: frozenset[str]) -> bool:
    """`{"a": ..., "b": ...}` whose keys are all literal strings in `allowed` (no `**` entries)."""
    return isinstance(node, ast.Dict) and all(
        isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value in allowed
        for key in node.keys
    )


def names_dunder(text: str) -> bool:
    """True for "__class__", "x.__globals__" and "{0.__class__}": strings that name a dunder."""
    parts = text.split(".")
    if all(part.isidentifier() for part in parts) and any(is_dunder(part) for part in parts):
        return True
    return any(is_dunder(word) for field in _FORMAT_FIELD.findall(text) for word in _WORD.findall(field))


def positional_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    return [*node.args.posonlyargs, *node.args.args]
