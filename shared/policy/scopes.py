"""An iterative walk over a module's AST that knows, for each node, the scopes around it.

Python resolves a bare name to the innermost *function* scope that binds it (class bodies do not
enclose the functions inside them), then to the module, then to builtins. The checks need that
to tell `input` the builtin from `input` the parameter. The walk is iterative so that a deeply
nested expression cannot exhaust the interpreter's stack.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
FUNCTIONS_AND_LAMBDAS = (*FUNCTIONS, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
# Operator and context nodes (Load, Add, Eq...): shared singletons that carry no names.
_MARKERS = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)


def _node_types(base: type) -> set[type]:
    found: set[type] = {base}
    subclasses: list[type] = type.__subclasses__(base)
    for sub in subclasses:
        found |= _node_types(sub)
    return found


# Every node type that can carry names: ast.parse makes nodes of exactly these types, so a set
# lookup on type() answers what isinstance would, at a fraction of the cost over every node.
_NAMED_NODE_TYPES = frozenset(_node_types(ast.AST) - {t for m in _MARKERS for t in _node_types(m)})
# The node types whose children sit in another scope, a class body or an annotation.
_SCOPING_TYPES = frozenset({*FUNCTIONS, ast.Lambda, ast.ClassDef, *COMPREHENSIONS, ast.AnnAssign})
# The node types the binding scan looks at (ast.parse makes nodes of these exact types); it only
# goes through every other node to the nodes under it.
_BINDING_SCAN_SPECIAL = frozenset({
    *FUNCTIONS, ast.ClassDef, ast.Lambda, *COMPREHENSIONS, ast.Name, ast.Import, ast.ImportFrom,
    ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping, ast.Global,
})


@dataclass(frozen=True)
class Scope:
    """A function, lambda or comprehension, with the names local to it."""

    node: ast.AST
    names: frozenset[str]


class Site(NamedTuple):
    """One node, where it sits (its parent and the parent's field), and what encloses it.

    A named tuple rather than a frozen dataclass: the walk makes one per node, and a frozen
    dataclass costs several times as much to build, most of a large variant's check.
    """

    node: ast.AST
    parent: ast.AST | None
    field: str
    scopes: tuple[Scope, ...]  # innermost last; the module is not among them
    in_class_body: bool
    in_annotation: bool

    def binder(self, name: str) -> Scope | None:
        """The innermost function-like scope that binds `name`, or None for module/builtin."""
        for scope in reversed(self.scopes):
            if name in scope.names:
                return scope
        return None

    @property
    def binds_dynamically(self) -> bool:
        """Bindings made here are module or class attributes, which other code may see or miss."""
        return not self.scopes or self.in_class_body


def walk(tree: ast.Module) -> Iterator[Site]:
    """Every node of `tree` in source order, with its context.

    `arguments` and `arg` nodes are not yielded; their defaults and annotations are.
    """
    stack = [Site(tree, None, "", (), in_class_body=False, in_annotation=False)]
    while stack:
        site = stack.pop()
        yield site
        children = _children(site)
        children.reverse()
        stack.extend(children)


def module_bindings(tree: ast.Module) -> frozenset[str]:
    """Names bound at module level or in any class body: the bindings a builtin can hide behind."""
    return _bindings(tree.body, enter_classes=True)


def _children(site: Site) -> list[Site]:
    """The sites directly under `site`, in source order."""
    node, scopes, in_class_body, in_annotation = site.node, site.scopes, site.in_class_body, site.in_annotation
    if type(node) not in _SCOPING_TYPES:
        return _plain_children(node, scopes, in_class_body, in_annotation)
    if isinstance(node, FUNCTIONS_AND_LAMBDAS):
        # Decorators, defaults and annotations run in the enclosing scope; the body in its own.
        children = [Site(d, node, "decorator_list", scopes, in_class_body, in_annotation) for d in _decorators(node)]
        children.extend(Site(d, node, "defaults", scopes, in_class_body, in_annotation) for d in _defaults(node.args))
        if isinstance(node, FUNCTIONS):
            for arg in _parameters(node.args):
                if arg.annotation is not None:
                    children.append(Site(arg.annotation, node, "annotation", scopes, in_class_body, True))
            if node.returns is not None:
                children.append(Site(node.returns, node, "returns", scopes, in_class_body, True))
        inner = (*scopes, Scope(node, _function_locals(node)))
        body = node.body if isinstance(node, FUNCTIONS) else [node.body]
        children.extend(Site(b, node, "body", inner, False, False) for b in body)
        return children
    if isinstance(node, ast.ClassDef):
        children = [Site(d, node, "decorator_list", scopes, in_class_body, in_annotation) for d in node.decorator_list]
        children.extend(Site(b, node, "bases", scopes, in_class_body, in_annotation) for b in node.bases)
        children.extend(Site(k, node, "keywords", scopes, in_class_body, in_annotation) for k in node.keywords)
        children.extend(Site(b, node, "body", scopes, True, False) for b in node.body)
        return children
    if isinstance(node, COMPREHENSIONS):
        # The first iterable is evaluated outside; everything else inside the comprehension.
        inner = (*scopes, Scope(node, _comprehension_locals(node)))
        children = []
        for index, generator in enumerate(node.generators):
            children.append(Site(generator.target, generator, "target", inner, False, in_annotation))
            if index == 0:
                children.append(Site(generator.iter, generator, "iter", scopes, in_class_body, in_annotation))
            else:
                children.append(Site(generator.iter, generator, "iter", inner, False, in_annotation))
            children.extend(Site(c, generator, "ifs", inner, False, in_annotation) for c in generator.ifs)
        for field in ("elt", "key", "value"):
            value = getattr(node, field, None)
            if isinstance(value, ast.AST):
                children.append(Site(value, node, field, inner, False, in_annotation))
        return children
    assert isinstance(node, ast.AnnAssign)  # the last of the scoping types
    children = [
        Site(node.target, node, "target", scopes, in_class_body, in_annotation),
        Site(node.annotation, node, "annotation", scopes, in_class_body, True),
    ]
    if node.value is not None:
        children.append(Site(node.value, node, "value", scopes, in_class_body, in_annotation))
    return children


def _plain_children(node: ast.AST, scopes: tuple[Scope, ...], in_class_body: bool, in_annotation: bool) -> list[Site]:
    """The sites under a node that opens no scope and marks nothing: each field in order."""
    children: list[Site] = []
    for field in node._fields:
        value: Any = getattr(node, field, None)
        if type(value) is list:
            children.extend(
                Site(item, node, field, scopes, in_class_body, in_annotation)
                for item in value
                if type(item) in _NAMED_NODE_TYPES
            )
        elif type(value) in _NAMED_NODE_TYPES:
            children.append(Site(value, node, field, scopes, in_class_body, in_annotation))
    return children


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.expr]:
    return node.decorator_list if isinstance(node, FUNCTIONS) else []


def _parameters(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _defaults(args: ast.arguments) -> list[ast.expr]:
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]


def _function_locals(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> frozenset[str]:
    params = {arg.arg for arg in _parameters(node.args)}
    body: list[ast.AST] = list(node.body) if isinstance(node, FUNCTIONS) else [node.body]
    return frozenset(params | _bindings(body, enter_classes=False))


def _comprehension_locals(node: ast.AST) -> frozenset[str]:
    names: set[str] = set()
    for generator in getattr(node, "generators", []):
        names.update(n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name))
    return frozenset(names)


def _bindings(roots: Iterable[ast.AST], *, enter_classes: bool) -> frozenset[str]:
    """Names bound by `roots` in their own scope, not inside nested functions or comprehensions.

    A walrus inside a comprehension binds in the enclosing scope, so comprehensions are entered
    but their loop targets are skipped. Missing a binding only makes the checks stricter.
    """
    bound: set[str] = set()
    declared_global: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if type(node) not in _BINDING_SCAN_SPECIAL:  # most nodes: only what is under them matters
            stack.extend(_child_nodes(node))
            continue
        if isinstance(node, FUNCTIONS):
            bound.add(node.name)
            stack.extend([*node.decorator_list, *_defaults(node.args)])
            continue
        if isinstance(node, ast.ClassDef):
            bound.add(node.name)
            stack.extend([*node.decorator_list, *node.bases, *(k.value for k in node.keywords)])
            if enter_classes:
                stack.extend(node.body)
            continue
        if isinstance(node, ast.Lambda):
            stack.extend(_defaults(node.args))
            continue
        if isinstance(node, COMPREHENSIONS):
            for generator in node.generators:
                stack.extend([generator.iter, *generator.ifs])
            stack.extend(
                v for f in ("elt", "key", "value") if isinstance(v := getattr(node, f, None), ast.AST)
            )
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update(bound_name(alias) for alias in node.names if alias.name != "*")
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
        stack.extend(_child_nodes(node))
    return frozenset(bound - declared_global)


def _child_nodes(node: ast.AST) -> list[ast.AST]:
    """The nodes directly under `node`, without the operator and context singletons."""
    found: list[ast.AST] = []
    for field in node._fields:
        value: Any = getattr(node, field, None)
        if type(value) is list:
            found.extend(item for item in value if type(item) in _NAMED_NODE_TYPES)
        elif type(value) in _NAMED_NODE_TYPES:
            found.append(value)
    return found


def bound_name(alias: ast.alias) -> str:
    """The name an import binds: `import a.b` binds `a`; `import a.b as c` and `from a import b` bind c/b."""
    return alias.asname or alias.name.split(".")[0]
