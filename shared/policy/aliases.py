"""Which names stand for imported modules, or for things reached from them, and their dotted paths.

The table is flow-insensitive: a name bound to `torch` anywhere counts as `torch` everywhere,
which can only make the checks stricter. It follows `import` statements and plain
`name = <path>` assignments; the checks refuse the other ways of handing a known module to a
name (lists, arguments, attributes...), so that this table stays complete for them.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from shared.policy.paths import canonical_path, is_library_module
from shared.policy.rules import KNOWN_MODULES
from shared.policy.scopes import Site, bound_name
from shared.policy.syntax import literal_getattr, unchain


def alias_targets(site: Site) -> list[str]:
    """The names `site` is assigned to when it is the value of `a = b = <value>` (or
    `a: T = <value>`) outside a class body; empty otherwise.

    In a class body the names would become class attributes, reachable as `Cls.name`, so they are
    not aliases the table can follow.
    """
    parent = site.parent
    if site.field != "value" or site.in_class_body:
        return []
    targets: list[ast.expr] = []
    if isinstance(parent, ast.Assign):
        targets = parent.targets
    elif isinstance(parent, ast.AnnAssign):
        targets = [parent.target]
    if not targets or not all(isinstance(t, ast.Name) for t in targets):
        return []
    return [t.id for t in targets if isinstance(t, ast.Name)]


class NameTable:
    """Names bound by imports and aliases, and the dotted paths they stand for."""

    def __init__(self, sites: Sequence[Site]) -> None:
        self._paths: dict[str, str] = {}
        modules: set[str] = set(KNOWN_MODULES)
        for site in sites:
            if isinstance(site.node, ast.Import):
                for alias in site.node.names:
                    path = alias.name if alias.asname else alias.name.split(".")[0]
                    self._paths.setdefault(bound_name(alias), path)
                    modules.update(_prefixes(alias.name))
            elif isinstance(site.node, ast.ImportFrom) and site.node.level == 0 and site.node.module:
                modules.update(_prefixes(site.node.module))
                for alias in site.node.names:
                    if alias.name != "*":
                        self._paths.setdefault(bound_name(alias), f"{site.node.module}.{alias.name}")
        self._module_paths = frozenset(modules)
        self._resolvable: dict[ast.AST, bool] = {}
        self._learn_aliases([(names, s.node) for s in sites if (names := alias_targets(s))])

    def _learn_aliases(self, definitions: list[tuple[list[str], ast.AST]]) -> None:
        # An alias may be defined from another (`t = torch; u = t`), in any order; follow each
        # name once, from the names already known, so a long chain costs linear time.
        waiting: dict[str, list[tuple[list[str], ast.AST]]] = {}
        for definition in definitions:
            root = chain_root(definition[1])
            if root is not None:
                waiting.setdefault(root, []).append(definition)
        ready = list(self._paths)
        while ready:
            for names, value in waiting.pop(ready.pop(), []):
                path = self.resolve(value)
                for name in names:
                    if path is not None and name not in self._paths:
                        self._paths[name] = path
                        ready.append(name)

    def is_resolvable(self, node: ast.AST) -> bool:
        """Whether `resolve(node)` is not None, in constant time per node of a chain.

        The checks ask this of every link of a chain; asking `resolve` instead would cost time
        quadratic in the chain's length.
        """
        pending = []
        while node not in self._resolvable:
            pending.append(node)
            if isinstance(node, ast.Attribute):
                node = node.value
            elif (link := literal_getattr(node)) is not None:
                node = link[0]
            else:
                self._resolvable[node] = isinstance(node, ast.Name) and node.id in self._paths
                break
        known = self._resolvable[node]
        self._resolvable.update(dict.fromkeys(pending, known))
        return known

    def path_of(self, name: str) -> str | None:
        return self._paths.get(name)

    def is_module(self, path: str) -> bool:
        """Whether `path` is a module: one this source imports, or one the libraries hold (under
        any of their names for it, library.py)."""
        return (
            path in self._module_paths
            or canonical_path(path) in self._module_paths
            or is_library_module(path)
        )

    def resolve(self, node: ast.AST) -> str | None:
        """The dotted path `node` stands for (`F.softmax` -> `torch.nn.functional.softmax`), or None."""
        root, attributes = unchain(node)
        base = self._paths.get(root.id) if isinstance(root, ast.Name) else None
        return None if base is None else ".".join([base, *attributes])


def chain_root(node: ast.AST) -> str | None:
    """The name a dotted chain starts from: `torch` in `torch.nn.functional`, else None."""
    root, _ = unchain(node)
    return root.id if isinstance(root, ast.Name) else None


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]
