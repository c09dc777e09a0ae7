"""Annotations: type expressions only, because libraries evaluate them as code.

An annotation is code that runs when its function or class is defined, and again whenever a
library evaluates it: functools.singledispatch and typing.get_type_hints turn strings in it into
code, torch.library.custom_op evaluates every string annotation (all of them, under
`from __future__ import annotations`), and Triton writes str() of a kernel's annotations into the
source of the launcher it compiles. So an annotation may only name types: names of classes, type
aliases and imported things, dotted chains from imports, subscripts of generics, `|`, and
constants; a string in it must be a dotted name that is itself such a type. Local variables'
annotations are never evaluated, so they are not judged here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from shared.policy.context import BindingKey, Context, binding_key, violation
from shared.policy.paths import canonical_path, is_under
from shared.policy.report import FORBIDDEN_CALL, Violation
from shared.policy.rules import (
    CLASS_DECORATORS,
    GENERIC_BUILTINS,
    GENERIC_PREFIXES,
    TRITON_ANNOTATION_PREFIX,
    TRITON_KERNEL_DECORATORS,
    TYPE_FACTORIES,
)
from shared.policy.scopes import FUNCTIONS, Site
from shared.policy.syntax import unchain

_DOTTED_NAME = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*")
_INERT_CONSTANTS = (bool, int, float, complex, type(None), type(...))
# How many type aliases deep a name may be defined (`A = B`, `B = C`...), so that judging one
# stays within the interpreter's stack.
ALIAS_DEPTH = 50

Problem = tuple[ast.AST, str]


def is_evaluated_annotation(site: Site) -> bool:
    """Whether `site` is a whole annotation that Python or a library evaluates: a parameter's or a
    return's, or a module or class variable's (not a local variable's)."""
    parent = site.parent
    if isinstance(parent, FUNCTIONS):
        return site.field in ("annotation", "returns")
    if isinstance(parent, ast.AnnAssign) and site.field == "annotation":
        return not site.scopes or site.in_class_body
    return False


def check_annotation(context: Context, site: Site, node: ast.expr) -> Iterator[Violation]:
    if isinstance(site.parent, FUNCTIONS) and _is_triton_kernel(context, site.parent):
        problem = _triton_problem(context, site, node)
    else:
        problem = _type_problem(context, site, node)
    if problem is not None:
        where, message = problem
        yield violation(where, FORBIDDEN_CALL, message)


def _type_problem(context: Context, site: Site, node: ast.expr) -> Problem | None:
    """Why `node`, evaluated at `site`, is not a type expression; None when it is."""
    stack: list[ast.expr] = [node]
    while stack:
        part = stack.pop()
        problem: Problem | None = None
        if isinstance(part, ast.Constant):
            problem = _constant_problem(context, part)
        elif isinstance(part, ast.Name):
            problem = _name_problem(context, site, part, part.id)
        elif isinstance(part, ast.Attribute):
            problem = _chain_problem(context, site, part)
        elif isinstance(part, ast.Subscript) and _is_literal(context, site, part.value):
            problem = _literal_problem(part.slice)
        elif isinstance(part, ast.Subscript):
            problem = _generic_problem(context, site, part.value)
            stack.append(part.slice)
        elif isinstance(part, (ast.Tuple, ast.List)):
            stack.extend(part.elts)
        elif isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr):
            stack.extend((part.left, part.right))
        else:
            problem = (
                part,
                f"an annotation may only name types; {_kind(part)} in one is code, run when the "
                "function or class is defined and whenever a library evaluates its annotations",
            )
        if problem is not None:
            return problem
    return None


def _constant_problem(context: Context, node: ast.Constant) -> Problem | None:
    if isinstance(node.value, _INERT_CONSTANTS):
        return None
    if isinstance(node.value, str) and _DOTTED_NAME.fullmatch(node.value):
        return _string_problem(context, node, node.value)
    return (
        node,
        f"the annotation {node.value!r} is not a dotted type name: libraries evaluate annotation "
        "strings as code (typing.get_type_hints, torch.library.custom_op)",
    )


def _string_problem(context: Context, node: ast.Constant, text: str) -> Problem | None:
    """A string annotation is evaluated in its module's namespace: it must name a type there."""
    first, _, rest = text.partition(".")
    if not rest:
        return _name_problem(context, None, node, first)
    path = context.names.path_of(first) if _is_library_name(context, None, first) else None
    if path is None:
        return (
            node,
            f"the annotation {text!r} must start from an import; an attribute of a class or variable "
            "of this file could hold any value, which libraries would evaluate",
        )
    return _module_problem(context, node, f"{path}.{rest}")


def _name_problem(context: Context, site: Site | None, node: ast.AST, name: str) -> Problem | None:
    if not is_type_name(context, site, name):
        return (
            node,
            f"`{name}` in an annotation must be a class, a type alias or an import: annotations are "
            f"evaluated, and a library that evaluates this one would use whatever `{name}` holds",
        )
    path = context.names.path_of(name)
    return None if path is None else _module_problem(context, node, path)


def _chain_problem(context: Context, site: Site, node: ast.Attribute) -> Problem | None:
    path = _library_path(context, site, node)
    if path is None:
        return (
            node,
            "a dotted name in an annotation must start from an import; an attribute of a class or "
            "variable of this file could hold any value, which libraries would evaluate",
        )
    return _module_problem(context, node, path)


def _library_path(context: Context, site: Site, node: ast.expr) -> str | None:
    """The dotted path of a chain whose root is bound only to library things (imports, aliases)."""
    root, _ = unchain(node)
    if not (isinstance(root, ast.Name) and _is_library_name(context, site, root.id)):
        return None
    return context.names.resolve(node)


def _module_problem(context: Context, node: ast.AST, path: str) -> Problem | None:
    if not context.names.is_module(path):
        return None
    return node, f"the module `{path}` is not a type; an annotation would hand it on as a value"


def _is_literal(context: Context, site: Site, node: ast.expr) -> bool:
    path = _library_path(context, site, node)
    return path is not None and canonical_path(path) == "typing.Literal"


def _literal_problem(node: ast.expr) -> Problem | None:
    """`Literal["mean", "sum"]` holds values, not types: constants, strings dotted names (a library
    that evaluates every string in an annotation, like torch.library.custom_op, then only looks a
    name up)."""
    values = node.elts if isinstance(node, ast.Tuple) else [node]
    for value in values:
        if not (
            isinstance(value, ast.Constant)
            and (
                isinstance(value.value, _INERT_CONSTANTS)
                or (isinstance(value.value, str) and _DOTTED_NAME.fullmatch(value.value))
            )
        ):
            return (
                value,
                "typing.Literal in an annotation may hold only numbers, booleans, None and strings that "
                "are dotted names: libraries evaluate the strings in annotations as code",
            )
    return None


def _generic_problem(context: Context, site: Site, node: ast.expr) -> Problem | None:
    """What an annotation subscripts: typing's generics, builtin containers, classes of this file.
    Anything else (a dict of a library) would hand back whatever it holds."""
    path = _library_path(context, site, node)
    if path is not None:
        canonical = canonical_path(path)
        if any(is_under(canonical, prefix) for prefix in GENERIC_PREFIXES):
            return None
    elif (
        context.names.resolve(node) is None
        and isinstance(node, ast.Name)
        and (
            (node.id in GENERIC_BUILTINS and context.is_builtin(site, node.id))
            or is_type_name(context, site, node.id)
        )
    ):
        return None
    shown = path or ast.unparse(node)
    return (
        node,
        f"an annotation may subscript only typing's generics, builtin containers and classes of this "
        f"file, not `{shown}`: a subscript of anything else is a lookup whose result libraries evaluate",
    )


def is_type_name(context: Context, site: Site | None, name: str) -> bool:
    """Whether `name`, read at `site` (None: in the module's namespace), is a builtin or is bound
    only to classes and type aliases; not a parameter, nor anything `global`/`nonlocal` rebinds."""
    if name in context.declared:
        return False
    key: BindingKey = binding_key(site, name) if site is not None else (None, name)
    scope = key[0]
    if isinstance(scope, (*FUNCTIONS, ast.Lambda)) and name in _parameters(scope):
        return False
    bindings = context.bindings.get(key)
    if not bindings:
        return scope is None  # a builtin, or a name bound nowhere (which fails when evaluated)
    if key in context.type_names:
        return context.type_names[key]
    if context.alias_depth >= ALIAS_DEPTH:
        return False  # aliases of aliases this deep are no honest types, and would exhaust the stack
    context.type_names[key] = False  # while it is judged: an alias defined through itself is not a type
    context.alias_depth += 1
    try:
        verdict = all(_binds_a_type(context, where, how) for where, how in bindings)
    finally:
        context.alias_depth -= 1
    context.type_names[key] = verdict
    return verdict


def _is_library_name(context: Context, site: Site | None, name: str) -> bool:
    """Whether `name` is bound only by imports and `name = <dotted path>` aliases."""
    key: BindingKey = binding_key(site, name) if site is not None else (None, name)
    bindings = context.bindings.get(key)
    return (
        name not in context.declared
        and bool(bindings)
        and all(
            isinstance(how, (ast.Import, ast.ImportFrom))
            or (
                isinstance(how, (ast.Assign, ast.AnnAssign))
                and how.value is not None
                and context.names.resolve(how.value) is not None
            )
            for _, how in bindings or ()
        )
    )


def _binds_a_type(context: Context, site: Site, how: ast.AST) -> bool:
    if isinstance(how, (ast.Import, ast.ImportFrom)):
        return True  # a library's name; _name_problem judges what it is
    if isinstance(how, ast.ClassDef):
        # A decorator's result is what the name holds; these return the class itself.
        return all(_decorator_path(context, d) in CLASS_DECORATORS for d in how.decorator_list)
    if isinstance(how, (ast.Assign, ast.AnnAssign)) and how.value is not None:
        statement = context.site_of(how)
        value = how.value
        if isinstance(value, ast.Call) and context.names.resolve(value.func) in TYPE_FACTORIES:
            return _is_type_factory_call(context, statement, value)
        return _type_problem(context, statement, value) is None
    return False


def _is_type_factory_call(context: Context, site: Site, call: ast.Call) -> bool:
    """`TypeVar("T", int, str, bound=X)`, `NewType("UserId", int)`: a literal name, then types."""
    if not call.args or not (isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
        return False
    if not _DOTTED_NAME.fullmatch(call.args[0].value):
        return False
    types = [*call.args[1:], *(k.value for k in call.keywords if k.arg not in ("covariant", "contravariant"))]
    flags = [k.value for k in call.keywords if k.arg in ("covariant", "contravariant")]
    return (
        all(k.arg is not None for k in call.keywords)
        and all(isinstance(f, ast.Constant) and isinstance(f.value, bool) for f in flags)
        and all(_type_problem(context, site, t) is None for t in types)
    )


def _decorator_path(context: Context, decorator: ast.expr) -> str | None:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return context.names.resolve(target)


def _is_triton_kernel(context: Context, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        (path := _decorator_path(context, d)) is not None
        and any(is_under(canonical_path(path), kernel) for kernel in TRITON_KERNEL_DECORATORS)
        for d in function.decorator_list
    )


def _triton_problem(context: Context, site: Site, node: ast.expr) -> Problem | None:
    """Triton writes str() of each annotation into Python source: a class gives its name, a
    triton.language type its own; any other library value could render a string the variant
    planted in it (a warnings filter's pattern, say)."""
    problem = _type_problem(context, site, node)
    if problem is not None:
        return problem
    for part in ast.walk(node):
        if not isinstance(part, (ast.Name, ast.Attribute)):
            continue
        path = context.names.resolve(part)
        if path is not None and not is_under(canonical_path(path), TRITON_ANNOTATION_PREFIX):
            return (
                part,
                f"a Triton kernel's annotations may name only classes of this file, builtin types and "
                f"triton.language types (tl.constexpr), not `{path}`: Triton writes each one into the "
                "Python source of the launcher it compiles",
            )
    return None


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    args = function.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _kind(node: ast.AST) -> str:
    kinds = {
        ast.Call: "a call",
        ast.Lambda: "a lambda",
        ast.JoinedStr: "an f-string",
        ast.NamedExpr: "an assignment",
        ast.Starred: "an unpacking",
    }
    return kinds.get(type(node), f"an expression ({type(node).__name__})")
