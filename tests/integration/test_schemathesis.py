"""Schemathesis against the service's own OpenAPI, on a real `codexops serve` process, every operation
authenticated as the admin: no 5xx, and every documented response matches its schema and content type.
The number of examples per operation is recorded in reports/schemathesis.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.support.servers import free_port, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]
CODEXOPS = str(Path(sys.executable).with_name("codexops"))
ADMIN_PASSWORD = "schemathesis-admin-password"
EXAMPLES = 25  # per operation: bounded so the whole run stays well under 2 minutes
CALLS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "CHAOS_", "REDIS_", "CONNECTION_"))}
    env.update(
        {
            "CODEX_ENVIRONMENT": "Development",  # the docs (and /openapi.json) are served in Development
            "CODEX_URLS": f"http://127.0.0.1:{port}",
            "SQLITE_CONNECTION_STRING": f"Data Source={directory}/codex.db",
            "LOG_DIR": str(directory / "logs"),
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SHUTDOWN_DRAIN_SECONDS": "0",
        }
    )
    process = subprocess.Popen(
        [CODEXOPS, "serve"], cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        _write_tally()


def _login(service: str) -> dict[str, str]:
    answer = httpx.post(f"{service}/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['accessToken']}"}


@pytest.fixture(scope="module")
def auth(service: str) -> dict[str, str]:
    return _login(service)


def _openapi() -> dict[str, Any]:
    """The schema the service serves at /openapi.json, built in-process (collection needs it before
    any server runs; schemathesis' lazy fixture loader does not work with this pytest)."""
    from app.config import Settings
    from app.main import create_app

    logs = tempfile.mkdtemp(prefix="codex-openapi-")
    return create_app(
        Settings(environment="Development", log_dir=logs, jwt_secret="openapi-only-" + "k" * 32)
    ).openapi()


schema = schemathesis.openapi.from_dict(_openapi())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)
def test_every_operation(case: Any, service: str, auth: dict[str, str]) -> None:
    if case.path.startswith("/api/admin/users/") and case.method in ("DELETE", "PUT", "POST"):
        case.path_parameters = {**(case.path_parameters or {}), "username": "nobody-" + str(CALLS.total())}
    if case.path == "/api/auth/logout":  # would end the shared session: a session of its own
        auth = _login(service)
    response = case.call_and_validate(
        base_url=service,
        headers=auth,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
    CALLS[f"{case.method} {case.path}"] += 1
    STATUSES[response.status_code] += 1


def _write_tally() -> None:
    out = ROOT / "reports" / "schemathesis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    documented = [f"{m.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for m in item]
    tally = {
        "documented_operations": len(documented),
        "operations_called": len([op for op in documented if CALLS[op]]),
        "method_path_pairs_called": len(CALLS),
        "examples": CALLS.total(),
        "statuses": dict(sorted(STATUSES.items())),
        "per_operation": dict(sorted(CALLS.items())),
    }
    out.write_text(json.dumps(tally, indent=2) + "\n")
    print("schemathesis", json.dumps({k: v for k, v in tally.items() if k != "per_operation"}))
