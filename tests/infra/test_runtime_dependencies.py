"""The runtime image installs only the service: the project's main dependencies (uv.lock), which
cover every third-party import of the service and hold none of the operator's tools."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx
import pytest

from codexops import http_client
from tests.support.servers import free_port

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


# Its own waits (a 300 s uv sync, up to 240 s to serve) outlast the default 120 s when the loads of the
# other shards hold the cores: a fresh venv has no bytecode, and its first start compiles every import.
@pytest.mark.timeout(600)
def test_the_service_serves_from_the_runtime_dependencies_alone(tmp_path: Path) -> None:
    """What the image installs (`uv sync --no-default-groups`, from uv.lock) is enough to serve: the
    static check above cannot see an import made at run time."""
    source = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "pyproject.toml", "uv.lock", "README.md", "app", "codexops", "infra"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split()
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    uv = [found] if (found := shutil.which("uv")) else ["python3.11", "-m", "uv"]  # make setup installs it
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    sync = [*uv, "sync", "--frozen", "--no-default-groups", "--no-editable", "--quiet", "--python", sys.executable]
    subprocess.run(sync, cwd=source, env=env, check=True, timeout=300)
    assert not (venv / "bin" / "pulumi").exists() and not (venv / "bin" / "locust").exists()
    port = free_port()
    serve_env = {
        **os.environ,
        "CODEX_ENVIRONMENT": "Development",
        "CODEX_URLS": f"http://127.0.0.1:{port}",
        "LOG_DIR": str(tmp_path / "logs"),
        "SQLITE_CONNECTION_STRING": f"Data Source={tmp_path / 'codex.db'}",
    }
    for key in ("CONNECTION_STRING", "REDIS_CONNECTION_STRING"):
        serve_env.pop(key, None)
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(venv / "bin" / "codexops"), "serve"], cwd=tmp_path, env=serve_env, stdout=output, stderr=output
        )
    try:
        _wait_until_ready(server, port, log)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_ready(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """/health/ready answers 200, or the failure says what the server printed."""
    deadline = time.monotonic() + 240
    status: int | str = "nothing (not listening)"
    while time.monotonic() < deadline and server.poll() is None:
        try:
            status = http_client.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).status_code
        except httpx.TransportError as exc:
            status = f"nothing ({type(exc).__name__})"
        if status == 200:
            return
        time.sleep(0.2)
    pytest.fail(f"/health/ready answered {status}, exit {server.poll()}; serve printed:\n{log.read_text()[-3000:]}")
