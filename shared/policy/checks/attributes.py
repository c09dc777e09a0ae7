"""Attribute access and dotted chains: what a path names, dunders, private names, assignments
to imported modules, and modules or harness classes passed around as values."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from shared.policy.aliases import alias_targets
from shared.policy.context import Context, is_called, is_link, violation
from shared.policy.paths import (
    classify_attribute_name,
    classify_path,
    classify_reached_module,
    classify_reentry,
    is_dunder,
    is_raw_buffer_class,
    is_torch_class_named,
    sparse_flag_position,
)
from shared.policy.report import (
    DUNDER_ACCESS,
    FORBIDDEN_CALL,
    HARNESS_ACCESS,
    MODULE_MONKEYPATCH,
    NATIVE_CODE,
    Violation,
)
from shared.policy.rules import (
    ATTRIBUTE_BUILTINS,
    CALL_CHECKED_FUNCTIONS,
    CONFIG_STORES,
    PRECISION_STORES,
    PUBLIC_UNDERSCORE_ATTRIBUTES,
    SENSITIVE_CLASS_NAMES,
    STRING_ATTRIBUTE_FUNCTIONS,
)
from shared.policy.scopes import Site
from shared.policy.syntax import names_dunder, store_root, unchain

ATTRIBUTE_ARGUMENT_BUILTINS = ATTRIBUTE_BUILTINS | {"hasattr"}
WRAPS_MESSAGE = (
    "functools.wraps may only decorate a function defined here, as @functools.wraps(f): assigned= "
    "and updated= copy any attributes by name, dunders included, and a call can copy them onto any "
    "object"
)


def check_attribute(context: Context, site: Site, node: ast.Attribute) -> Iterator[Violation]:
    attr = node.attr
    if is_dunder(attr):
        if not (attr == "__init__" and _is_super_init_call(context, site, node)):
            yield violation(
                node,
                DUNDER_ACCESS,
                f"the dunder attribute `{attr}` is not allowed; dunders reach interpreter internals "
                "(super().__init__ is the one exception)",
            )
        return
    if not isinstance(node.ctx, ast.Load):
        yield from check_store(context, site, node, obj=node.value, attr=attr)
    if attr.startswith("_") and attr not in PUBLIC_UNDERSCORE_ATTRIBUTES:
        yield from _check_private_attribute(context, site, node)
    refused = None if is_link(site) else _path_violation(context, site, node)
    if refused is not None:
        yield refused
    else:
        yield from check_attribute_name(node, attr)
    if not is_link(site):
        yield from _check_escape(context, site, node)


def check_attribute_name(node: ast.AST, name: str) -> Iterator[Violation]:
    verdict = classify_attribute_name(name)
    if verdict is not None:
        yield violation(node, *verdict)


def check_chain(context: Context, site: Site, node: ast.expr) -> Iterator[Violation]:
    """A whole dotted chain: refuse what its path names, and modules or harness classes used as
    values. Assignments are judged by check_store; a bare name where it was imported or aliased."""
    refused = None if isinstance(node, ast.Name) else _path_violation(context, site, node)
    if refused is not None:
        yield refused
    yield from _check_escape(context, site, node)


def _path_violation(context: Context, site: Site, node: ast.expr) -> Violation | None:
    if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
        return None
    path = context.names.resolve(node)
    if path is not None:
        verdict = classify_path(path)
    else:
        # An unknown object can still lead back into a package (`obj.torch.load`), or hold a
        # module the libraries import for themselves (`obj.os`): objects keep what they are given.
        root, attributes = unchain(node)
        parts = ["", *attributes]
        shown = "`." + ".".join(attributes) + "`"
        verdict = classify_reentry(parts, shown=shown)
        own = isinstance(root, ast.Name) and context.is_method_receiver(site, root.id)
        if verdict is None and not own:
            verdict = classify_reached_module(parts, shown=shown)
    return None if verdict is None else violation(node, *verdict)


def check_store(
    context: Context, site: Site, node: ast.AST, *, obj: ast.expr, attr: str | None
) -> Iterator[Violation]:
    """An assignment to, or deletion of, `obj.attr` (or `obj[...]` when attr is None)."""
    deleting = isinstance(getattr(node, "ctx", None), ast.Del) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "delattr"
    )
    verb = "deleting" if deleting else "assigning to"
    path = context.names.resolve(obj)
    root = store_root(obj)
    root_path = context.names.path_of(root.id) if isinstance(root, ast.Name) else None
    if path is not None:
        target = f"{path}.{attr}" if attr is not None else f"{path}[...]"
        if target in PRECISION_STORES and not deleting:
            yield from _check_precision_store(node, target, _stored_value(site, node))
        elif target not in CONFIG_STORES:
            yield violation(
                node,
                MODULE_MONKEYPATCH,
                f"{verb} `{target}` would change it for the whole process, the harness's evaluation included",
            )
    elif root_path is not None:
        yield violation(
            node,
            MODULE_MONKEYPATCH,
            f"{verb} part of something reached from `{root_path}` would change it for the whole process",
        )
    elif isinstance(root, ast.Name) and context.is_train_ctx(site, root.id):
        yield violation(
            node, HARNESS_ACCESS, f"{verb} part of `{root.id}` would change the harness's context object"
        )


def _check_precision_store(node: ast.AST, target: str, value: ast.expr | None) -> Iterator[Violation]:
    allowed = PRECISION_STORES[target]
    if isinstance(value, ast.Constant) and value.value in allowed:
        return
    shown = ", ".join(repr(v) for v in sorted(allowed))
    yield violation(
        node, MODULE_MONKEYPATCH, f"`{target}` may be set only to a literal string, one of {shown}"
    )


def _stored_value(site: Site, node: ast.AST) -> ast.expr | None:
    """What `target = value` or `setattr(obj, "name", value)` stores; None for any other store
    (augmented, unpacked, a loop or `with` target), whose value is not a plain expression."""
    if isinstance(node, ast.Call):
        return node.args[2] if len(node.args) == 3 else None
    if isinstance(site.parent, ast.Assign) and site.field == "targets":
        return site.parent.value
    return None


def check_string(context: Context, site: Site, node: ast.Constant, text: str) -> Iterator[Violation]:
    """A string that names a dunder is the raw material of a lookup by name."""
    if text == "__main__" or _is_attribute_name_argument(context, site):
        return
    if names_dunder(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        yield violation(
            node, DUNDER_ACCESS, f"the string {shown!r} names a dunder attribute, for lookup by name"
        )


def check_match_class(node: ast.MatchClass) -> Iterator[Violation]:
    """`case C(attr=x)` reads `subject.attr`, like an attribute access."""
    for attr in node.kwd_attrs:
        if is_dunder(attr):
            yield violation(node, DUNDER_ACCESS, f"matching the dunder attribute `{attr}` is not allowed")
        else:
            yield from check_attribute_name(node, attr)


def _is_super_init_call(context: Context, site: Site, node: ast.Attribute) -> bool:
    base = node.value
    return (
        is_called(site)
        and isinstance(base, ast.Call)
        and isinstance(base.func, ast.Name)
        and base.func.id == "super"
        and context.is_builtin(site, "super")
    )


def _check_private_attribute(context: Context, site: Site, node: ast.Attribute) -> Iterator[Violation]:
    """`obj._name` is for obj's own code: allowed on self and cls only.

    Private attributes of other objects lead to their internals (a numpy array's `_ctypes`
    helper holds the ctypes module). Chains from modules are judged by their path instead.
    """
    base = node.value
    if context.names.is_resolvable(base):
        return
    if isinstance(base, ast.Name) and context.is_method_receiver(site, base.id):
        return
    yield violation(
        node,
        HARNESS_ACCESS,
        f"the private attribute `{node.attr}` may be used only on self or cls; on other objects it "
        "reaches their internals",
    )


def _check_escape(context: Context, site: Site, node: ast.expr) -> Iterator[Violation]:
    path = context.names.resolve(node)
    if path is None or (isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load)):
        return
    if path in CALL_CHECKED_FUNCTIONS:
        yield from _check_call_checked_function(site, node, path)
        return
    if sparse_flag_position(path) is not None:
        # nn.Embedding: checked where called, judged as a base by definitions.py, and named
        # freely where naming it calls nothing (isinstance(m, nn.Embedding)).
        base = isinstance(site.parent, ast.ClassDef) and site.field == "bases"
        if not (base or _is_inert_class_position(context, site, subscripts=False)):
            yield from _check_call_checked_function(site, node, path)
        return
    if is_raw_buffer_class(path):
        yield from _check_raw_buffer_class(context, site, node, path)
        return
    sensitive = is_torch_class_named(path, SENSITIVE_CLASS_NAMES)
    if not (sensitive or context.names.is_module(path)):
        return
    if site.in_annotation or is_called(site) or alias_targets(site) or _is_attribute_argument(site):
        return
    if sensitive and _is_inert_class_position(context, site):
        return
    if sensitive:
        message = (
            f"the class `{path}` may be named only in annotations, isinstance() checks, comparisons, "
            "type subscripts, typing.cast and class bases; as a value it could be patched out of this "
            "check's sight"
        )
    else:
        message = (
            f"the module `{path}` may be used only through its attributes or a plain `name = {path}` "
            "alias; as a value, changes made to it would escape this check"
        )
    yield violation(node, MODULE_MONKEYPATCH, message)


def _check_call_checked_function(site: Site, node: ast.expr, path: str) -> Iterator[Violation]:
    """torch.compile, functools.wraps...: judged by their arguments, so only where they are called.

    A bare decorator is a call with the function as its one argument; but `@functools.wraps` bare
    makes the function a copier, `update_wrapper` waiting for any object to copy onto."""
    decorator = site.field == "decorator_list" and path != "functools.wraps"
    if site.in_annotation or is_called(site) or alias_targets(site) or decorator:
        return
    if path == "functools.wraps":
        yield violation(node, FORBIDDEN_CALL, WRAPS_MESSAGE)
        return
    yield violation(
        node,
        FORBIDDEN_CALL,
        f"`{path}` may only be called where it is named (or be a decorator): this check judges its "
        "arguments there, and a call made out of its sight would escape it",
    )


def _check_raw_buffer_class(context: Context, site: Site, node: ast.expr, path: str) -> Iterator[Violation]:
    """numpy.ndarray: fine in annotations and isinstance(), never called or subclassed."""
    if site.in_annotation or alias_targets(site):
        return
    base = isinstance(site.parent, ast.ClassDef) and site.field == "bases"
    if not (is_called(site) or base) and _is_inert_class_position(context, site, subscripts=False):
        return
    use = "called" if is_called(site) else "subclassed" if base else "used as a value"
    yield violation(
        node,
        NATIVE_CODE,
        f"`{path}` may be named only in annotations, isinstance() checks and comparisons; {use}, it "
        "builds an array over any buffer, and with an object dtype its elements are references forged "
        "from raw bytes (create arrays with numpy.array, numpy.zeros...)",
    )


def _is_attribute_argument(site: Site) -> bool:
    """The object of getattr/setattr/delattr/hasattr, which the call checks judge."""
    call = site.parent
    return (
        isinstance(call, ast.Call)
        and site.field == "args"
        and call.args[0] is site.node
        and isinstance(call.func, ast.Name)
        and call.func.id in ATTRIBUTE_ARGUMENT_BUILTINS
    )


def _is_attribute_name_argument(context: Context, site: Site) -> bool:
    """A literal name given to getattr() and friends, which the call checks judge."""
    call = site.parent
    if not (isinstance(call, ast.Call) and site.field == "args"):
        return False
    if isinstance(call.func, ast.Name) and call.func.id in ATTRIBUTE_ARGUMENT_BUILTINS:
        return True
    return context.names.resolve(call.func) in STRING_ATTRIBUTE_FUNCTIONS


def _is_inert_class_position(context: Context, site: Site, *, subscripts: bool = True) -> bool:
    """Where naming a class cannot hand it to other code: comparisons, bases, patterns, type
    subscripts (unless `subscripts` is false: a generic alias constructs its class when called),
    typing.cast, and the second argument of isinstance/issubclass (alone or in a tuple)."""
    parent = site.parent
    if (
        isinstance(parent, ast.Compare)
        or (isinstance(parent, ast.ClassDef) and site.field == "bases")
        or (isinstance(parent, ast.MatchClass) and site.field == "cls")
    ):
        return True
    holder = context.site_of(parent) if isinstance(parent, ast.Tuple) else site
    if isinstance(holder.parent, ast.Subscript) and holder.field == "slice":
        return subscripts
    call = holder.parent
    if not isinstance(call, ast.Call) or holder.field != "args":
        return False
    if context.names.resolve(call.func) == "typing.cast":
        return call.args[0] is holder.node
    return (
        isinstance(call.func, ast.Name)
        and call.func.id in ("isinstance", "issubclass")
        and context.is_builtin(holder, call.func.id)
        and len(call.args) == 2
        and call.args[1] is holder.node
    )
