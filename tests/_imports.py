"""The import graph of the fedrobust package, read from its source (no module is imported).

Every ``import`` and ``from ... import`` counts, at module level or inside a function, except
under ``if TYPE_CHECKING:`` (annotations only). ``python tests/_imports.py`` prints the edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fedrobust"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    base = current.split(".") if is_package else current.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


class _Imports(ast.NodeVisitor):
    def __init__(self, name: str, is_package: bool) -> None:
        self.name, self.is_package, self.found = name, is_package, set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.name, self.is_package, node.level, node.module) if node.level else (node.module or "")
        self.found.add(base)
        for alias in node.names:  # "from . import x" may import the submodule x
            self.found.add(f"{base}.{alias.name}")


def graph() -> dict[str, set[str]]:
    """fedrobust module -> the fedrobust modules it imports (submodules only where they exist)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), str(path)))
        edges[name] = {m for m in visitor.found if m in files and m != name}
    return edges


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or not (importing ``a.b`` runs ``a`` too)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            chain = [".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 2)]
            for m in chain:
                if m in edges and m not in seen:
                    seen.add(m)
                    todo.append(m)
    return seen


if __name__ == "__main__":
    for name, targets in sorted(graph().items()):
        for target in sorted(targets):
            print(f"{name} -> {target}")
