"""Checks of the package's architecture: imports flow one way and stay on public names.

    python -m regutils.layout          # prints the module graph; exit status 1 on a cycle or a private import

Every ``from .x import ...`` and ``from . import x`` counts, at module level or inside a
function (a deferred import is still a dependency). ``tests/test_layout.py`` runs the same
checks, so a cycle or a reach into another module's private name fails the suite.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _modules(root: Path) -> dict[str, ast.Module]:
    """Every module of the package by dotted name relative to it (``chapters.setup``), packages' own files left out."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        if relative.name not in ("__init__", "__main__"):
            modules[".".join(relative.parts)] = ast.parse(path.read_text(), str(path))
    return modules


def _relative_imports(tree: ast.Module, importer: str, names: set[str]):
    """(module imported, names taken from it or None, aliases bound to the module) of each relative import.

    ``importer`` is the importing module's dotted name: ``from .. import x`` in ``chapters.setup`` is ``x``.
    """
    package = importer.split(".")[:-1]
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0 or node.level > len(package) + 1:
            continue
        base = package[:len(package) + 1 - node.level]
        if node.module:
            yield ".".join([*base, node.module]), [a.name for a in node.names], {}
        else:  # from . import x, y as z
            for a in node.names:
                full = ".".join([*base, a.name])
                if full in names:
                    yield full, None, {a.asname or a.name: full}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``__init__`` and ``__main__`` left out)."""
    trees = _modules(Path(root))
    graph = {name: set() for name in trees}
    for name, tree in trees.items():
        for module, _, _ in _relative_imports(tree, name, set(trees)):
            if module in trees and module != name:
                graph[name].add(module)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, modules in name order)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def private_imports(root: Path = PACKAGE) -> list[tuple[str, str, str]]:
    """(importer, module, name) for each private name (``_x``, not dunder) one module takes from another."""
    trees = _modules(Path(root))
    found = []
    for name, tree in trees.items():
        aliases = {}
        for module, taken, bound in _relative_imports(tree, name, set(trees)):
            aliases.update(bound)
            found += [(name, module, t) for t in taken or () if t.startswith("_") and not t.startswith("__")]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append((name, aliases[node.value.id], node.attr))
    return sorted(set(found))


def unlisted_modules(root: Path = PACKAGE) -> list[str]:
    """Modules (and subpackages) that the docstring of their package's ``__init__.py`` does not name."""
    root = Path(root)
    names = set(_modules(root))
    names |= {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}  # subpackages
    unlisted = []
    for name in sorted(names):
        *package, leaf = name.split(".")
        doc = ast.get_docstring(ast.parse(root.joinpath(*package, "__init__.py").read_text())) or ""
        if leaf not in set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", doc)):
            unlisted.append(name)
    return unlisted


def main() -> int:
    graph = import_graph()
    for name, deps in graph.items():
        print(f"{name:22s} -> {', '.join(sorted(deps)) or '-'}")
    problems = []
    if cycle := find_cycle(graph):
        problems.append("import cycle: " + " -> ".join(cycle))
    problems += [f"{a} imports the private name {m}.{n}" for a, m, n in private_imports()]
    problems += [f"{m} is not named in regutils/__init__.py" for m in unlisted_modules()]
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
