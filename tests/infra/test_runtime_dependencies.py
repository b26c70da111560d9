"""The runtime image installs only the service: the project's main dependencies (uv.lock), which
cover every third-party import of the service and hold none of the operator's tools."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the image runs: the app and `codexops serve` (its CLI module imports app.config and infra.spec).
SERVICE_SOURCES = [*sorted((ROOT / "app").rglob("*.py")), ROOT / "codexops" / "cli.py", ROOT / "codexops" / "serve.py"]
SERVICE_SOURCES.append(ROOT / "infra" / "spec.py")
OPERATOR_TOOLS = {
    "pulumi",
    "pulumi-kubernetes",
    "pulumi-docker",
    "matplotlib",
    "locust",
    "kubernetes-validate",
    "pytest",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure() -> set[str]:
    """Every distribution the project's main dependencies pull in, per uv.lock."""
    packages = {_norm(p["name"]): p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    todo = [_norm(d["name"]) for d in packages["living-codex-ops"]["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        package = packages[name]
        todo += [_norm(d["name"]) for d in package.get("dependencies", [])]
        for extra in package.get("optional-dependencies", {}).values():  # e.g. sqlalchemy[asyncio]
            todo += [_norm(d["name"]) for d in extra]
    return seen


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in SERVICE_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("app", "codexops", "infra")}


def test_the_runtime_dependencies_hold_no_operator_tool() -> None:
    assert not OPERATOR_TOOLS & _runtime_closure()


def test_every_import_of_the_service_is_a_runtime_dependency() -> None:
    owners = packages_distributions()
    closure = _runtime_closure()
    missing = {
        name: owners.get(name)
        for name in _third_party_imports()
        if not {_norm(d) for d in owners.get(name, [])} & closure
    }
    assert not missing, f"imported by the service but not in [project].dependencies: {missing}"


def test_the_image_installs_only_the_main_dependencies() -> None:
    text = (ROOT / "app" / "Dockerfile").read_text()
    syncs = re.findall(r"uv sync [^\n]*", text)
    assert syncs and all("--no-default-groups" in s and "--frozen" in s for s in syncs)
