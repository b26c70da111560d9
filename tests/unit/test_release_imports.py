"""codexops/releases/ imports without a cycle: the graph is read from the source (every import, at module
level, inside functions and under TYPE_CHECKING), so a cycle cannot hide behind an import deferred to call
time."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "codexops.releases"
FOLDER = Path(__file__).resolve().parents[2] / "codexops" / "releases"
DEFERRED = ("pulumi",)  # heavy, and only the Pulumi backend needs it (codexops/releases/pulumi_backend.py)


def imported(module: str, tree: ast.AST, modules: set[str]) -> set[str]:
    """The package's modules that `tree` (the source of `module`) imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from package import module`
    return found & modules - {module}


def import_graph(folder: Path = FOLDER, package: str = PACKAGE) -> dict[str, set[str]]:
    sources = {f"{package}.{path.stem}": path for path in sorted(folder.glob("*.py")) if path.stem != "__init__"}
    modules = set(sources)
    return {name: imported(name, ast.parse(path.read_text()), modules) for name, path in sources.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per edge that closes one (depth first), each as the path that returns to its start."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    return found


def test_the_release_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 10 and graph[f"{PACKAGE}.promote"]  # the package was read, imports and all
    named = [" -> ".join(m.removeprefix(f"{PACKAGE}.") for m in cycle) for cycle in cycles(graph)]
    assert not named, "import cycles in codexops/releases/: " + "; ".join(named)


def imports_in_functions(tree: ast.AST) -> list[str]:
    """The modules imported inside a function body (deferred to call time)."""
    names: list[str] = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom):
                names.append("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
    return names


def test_only_a_heavy_optional_dependency_is_imported_inside_a_function() -> None:
    deferred = {
        f"{path.name}: {name}"
        for path in sorted(FOLDER.glob("*.py"))
        for name in imports_in_functions(ast.parse(path.read_text()))
        if name.split(".")[0] not in DEFERRED
    }
    assert not deferred, "imported at call time, which hides the import graph: " + ", ".join(sorted(deferred))


def test_a_cycle_behind_a_function_level_import_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from pkg import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from pkg.c import g\n")
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n")
    (tmp_path / "d.py").write_text("from . import a\n")  # relative, and no cycle through it
    graph = import_graph(tmp_path, "pkg")
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}, "pkg.d": {"pkg.a"}}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    assert imports_in_functions(ast.parse((tmp_path / "b.py").read_text())) == ["pkg.c"]
