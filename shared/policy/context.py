"""What the checks know about the whole module beyond the node in hand, and how they report."""

from __future__ import annotations

import ast

from shared.policy.aliases import NameTable
from shared.policy.report import Violation
from shared.policy.scopes import FUNCTIONS, Site, bound_name, module_bindings, walk
from shared.policy.syntax import literal_getattr, positional_parameters

# Where a name is bound: the function-like scope that binds it, or None for the module and class
# bodies together (a class body's names are visible to the annotations in it).
BindingKey = tuple[ast.AST | None, str]


class Context:
    """Built once per source: the walk, the name table, and who binds what."""

    def __init__(self, tree: ast.Module) -> None:
        self.sites = list(walk(tree))
        self.names = NameTable(self.sites)
        self._site_of = {site.node: site for site in self.sites}
        self._module_bound = module_bindings(tree)
        # Each module-level `def train(ctx)`, mapped to its context parameter's name.
        self._train_ctx: dict[ast.AST, str] = {
            statement: params[0].arg
            for statement in tree.body
            if isinstance(statement, FUNCTIONS)
            and statement.name == "train"
            and (params := positional_parameters(statement))
        }
        # Each method, mapped to its first parameter's name (self, cls).
        self._receivers: dict[ast.AST, str] = {
            site.node: params[0].arg
            for site in self.sites
            if isinstance(site.node, FUNCTIONS)
            and site.in_class_body
            and (params := positional_parameters(site.node))
        }
        self.bindings, self.declared = _bindings(self.sites)
        # The annotation check's verdicts on names, and how deep in aliases it is judging now.
        self.type_names: dict[BindingKey, bool] = {}
        self.alias_depth = 0

    def site_of(self, node: ast.AST) -> Site:
        return self._site_of[node]

    def is_builtin(self, site: Site, name: str) -> bool:
        """Whether `name`, read at `site`, is the builtin of that name."""
        return site.binder(name) is None and name not in self._module_bound

    def is_train_ctx(self, site: Site, name: str) -> bool:
        """Whether `name` at `site` is the context object `train(ctx)` received."""
        scope = site.binder(name)
        return scope is not None and self._train_ctx.get(scope.node) == name

    def is_method_receiver(self, site: Site, name: str) -> bool:
        """Whether `name` at `site` is the self (or cls) of the method it is used in."""
        scope = site.binder(name)
        return scope is not None and self._receivers.get(scope.node) == name


def binding_key(site: Site, name: str) -> BindingKey:
    scope = site.binder(name)
    return (None if scope is None else scope.node), name


def _bindings(sites: list[Site]) -> tuple[dict[BindingKey, list[tuple[Site, ast.AST]]], frozenset[str]]:
    """Every binding of every name, as (site of the binding, what binds it): a class or function
    definition, an import, the Assign or AnnAssign whose plain target it is, or the node itself
    for any other binding (loop and `with` targets, walrus, except, match). Also the names that
    `global` or `nonlocal` rebinds from another scope."""
    bindings: dict[BindingKey, list[tuple[Site, ast.AST]]] = {}
    declared: set[str] = set()

    def bind(site: Site, name: str, how: ast.AST) -> None:
        bindings.setdefault(binding_key(site, name), []).append((site, how))

    for site in sites:
        node = site.node
        if isinstance(node, (*FUNCTIONS, ast.ClassDef)):
            bind(site, node.name, node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    bind(site, bound_name(alias), node)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            statement = site.parent
            plain = (isinstance(statement, ast.Assign) and site.field == "targets") or (
                isinstance(statement, ast.AnnAssign) and site.field == "target"
            )
            bind(site, node.id, statement if plain and statement is not None else node)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bind(site, node.name, node)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bind(site, node.rest, node)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
    return bindings, frozenset(declared)


def violation(node: ast.AST, code: str, message: str) -> Violation:
    return Violation(
        code=code, line=getattr(node, "lineno", 1), col=getattr(node, "col_offset", 0), message=message
    )


def is_called(site: Site) -> bool:
    return isinstance(site.parent, ast.Call) and site.field == "func"


def is_link(site: Site) -> bool:
    """True when the node is the inner part of a longer dotted chain (`torch` in `torch.load`)."""
    parent = site.parent
    if isinstance(parent, ast.Attribute):
        return site.field == "value"
    link = literal_getattr(parent)
    return link is not None and link[0] is site.node
