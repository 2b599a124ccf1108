"""No import cycle among fin3r_lib's modules, and the model registry is a leaf.

Every module is parsed (ast, nothing imported); its module-level imports (not those inside functions,
nor under `if TYPE_CHECKING:`, which never run) are resolved to fin3r_lib modules, relative ones
included. An edge goes to the module named (`from a.b import c` -> `a.b.c` when `c` is a submodule,
else `a.b`); parent packages are not edges (Python allows a package that is still initialising).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fin3r_lib"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: top level, and inside top-level if/try/with blocks."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            pending += node.orelse if _is_type_checking(node) else [*node.body, *node.orelse]
        elif isinstance(node, ast.Try):
            pending += [*node.body, *node.orelse, *node.finalbody, *(s for h in node.handlers for s in h.body)]
        elif isinstance(node, ast.With):
            pending += node.body
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The fin3r_lib modules `name` imports at module level."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = set()
    for node in module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            targets = [f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in modules else base_name for a in node.names]
        edges |= {t for t in targets if t in modules and t != name}
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_fin3r_lib_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_model_registry_is_a_leaf():
    assert import_graph()["fin3r_lib.models.registry"] <= {"fin3r_lib.errors"}


def test_the_finder_reports_a_cycle_it_is_given(tmp_path, monkeypatch):
    """The checker itself: a three-module circle written here is found and named, relative import included."""
    pkg = tmp_path / "fin3r_lib"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from fin3r_lib.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fin3r_lib import a\n"
        "def f():\n    from fin3r_lib import a\n"
    )
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    assert find_cycle(import_graph()) is None  # TYPE_CHECKING and function-level imports are not edges
    (pkg / "sub" / "c.py").write_text("from ..a import x\n")
    assert find_cycle(import_graph()) == ["fin3r_lib.a", "fin3r_lib.sub.b", "fin3r_lib.sub.c", "fin3r_lib.a"]
