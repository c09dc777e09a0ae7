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

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
# Operator and context nodes (Load, Add, Eq...): shared singletons that carry no names.
_MARKERS = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)


@dataclass(frozen=True)
class Scope:
    """A function, lambda or comprehension, with the names local to it."""

    node: ast.AST
    names: frozenset[str]


@dataclass(frozen=True)
class Site:
    """One node, where it sits (its parent and the parent's field), and what encloses it."""

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
        stack.extend(reversed(list(_children(site))))


def module_bindings(tree: ast.Module) -> frozenset[str]:
    """Names bound at module level or in any class body: the bindings a builtin can hide behind."""
    return _bindings(tree.body, enter_classes=True)


def _children(site: Site) -> Iterator[Site]:
    node = site.node

    def child(
        value: ast.AST,
        field: str,
        *,
        scopes: tuple[Scope, ...] = site.scopes,
        in_class_body: bool = site.in_class_body,
        in_annotation: bool = site.in_annotation,
    ) -> Site:
        return Site(value, node, field, scopes, in_class_body=in_class_body, in_annotation=in_annotation)

    if isinstance(node, (*FUNCTIONS, ast.Lambda)):
        # Decorators, defaults and annotations run in the enclosing scope; the body in its own.
        if isinstance(node, FUNCTIONS):
            yield from (child(d, "decorator_list") for d in node.decorator_list)
        yield from (child(d, "defaults") for d in _defaults(node.args))
        if isinstance(node, FUNCTIONS):
            for arg in _parameters(node.args):
                if arg.annotation is not None:
                    yield child(arg.annotation, "annotation", in_annotation=True)
            if node.returns is not None:
                yield child(node.returns, "returns", in_annotation=True)
        inner = (*site.scopes, Scope(node, _function_locals(node)))
        body = node.body if isinstance(node, FUNCTIONS) else [node.body]
        yield from (child(b, "body", scopes=inner, in_class_body=False, in_annotation=False) for b in body)
    elif isinstance(node, ast.ClassDef):
        yield from (child(d, "decorator_list") for d in node.decorator_list)
        yield from (child(b, "bases") for b in node.bases)
        yield from (child(k, "keywords") for k in node.keywords)
        yield from (child(b, "body", in_class_body=True, in_annotation=False) for b in node.body)
    elif isinstance(node, COMPREHENSIONS):
        # The first iterable is evaluated outside; everything else inside the comprehension.
        inner = (*site.scopes, Scope(node, _comprehension_locals(node)))

        def inside(value: ast.AST, field: str, parent: ast.AST) -> Site:
            return Site(value, parent, field, inner, in_class_body=False, in_annotation=site.in_annotation)

        for index, generator in enumerate(node.generators):
            yield inside(generator.target, "target", generator)
            if index == 0:
                yield Site(
                    generator.iter, generator, "iter", site.scopes, site.in_class_body, site.in_annotation
                )
            else:
                yield inside(generator.iter, "iter", generator)
            yield from (inside(condition, "ifs", generator) for condition in generator.ifs)
        for field in ("elt", "key", "value"):
            value = getattr(node, field, None)
            if isinstance(value, ast.AST):
                yield inside(value, field, node)
    elif isinstance(node, ast.AnnAssign):
        yield child(node.target, "target")
        yield child(node.annotation, "annotation", in_annotation=True)
        if node.value is not None:
            yield child(node.value, "value")
    else:
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.AST) and not isinstance(value, _MARKERS):
                yield child(value, field)
            elif isinstance(value, list):
                items = (
                    item for item in value if isinstance(item, ast.AST) and not isinstance(item, _MARKERS)
                )
                yield from (child(item, field) for item in items)


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
        stack.extend(ast.iter_child_nodes(node))
    return frozenset(bound - declared_global)


def bound_name(alias: ast.alias) -> str:
    """The name an import binds: `import a.b` binds `a`; `import a.b as c` and `from a import b` bind c/b."""
    return alias.asname or alias.name.split(".")[0]
