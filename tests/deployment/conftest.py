"""The target of the deployment checklist: local (testinfra's local backend), staging (the Docker
hosts), production (testinfra's kubectl backend) or a bare URL (HTTP checks only)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import testinfra

from infra.spec import EnvironmentSpec, load_spec

TIMEOUT = 5.0  # every HTTP check: a hung target fails the check, it never hangs the gate
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    kind: str  # local, staging, production, url
    url: str
    spec: EnvironmentSpec
    prometheus_url: str | None
    hosts: list[Any] = field(default_factory=list)  # testinfra hosts running an app replica
    log_paths: list[str] = field(default_factory=list)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=TIMEOUT, **kwargs)


def _kubectl_pods(namespace: str) -> list[str]:
    result = subprocess.run(
        [
            "kubectl",
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/name=living-codex-app",
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return [line.split("/", 1)[1] for line in result.stdout.split()]


def _resolve(option: str, stack: str | None, prometheus: str | None) -> Target:
    if option == "local":
        from codexops import localenv

        return Target(
            "local",
            localenv.gateway_url(),
            load_spec(stack or "staging"),
            prometheus or localenv.prometheus_url(),
            [testinfra.get_host("local://")],
            [str(localenv.RUNTIME / f"app-{i}" / "logs" / "server.log") for i in (1, 2)],
        )
    if option in ("staging", "production"):
        spec = load_spec(stack or option)
        scheme = "https" if spec.tls else "http"
        if option == "staging":
            hosts = [testinfra.get_host(f"docker://living-codex-app-{i + 1}") for i in range(spec.replicas)]
        else:
            hosts = [
                testinfra.get_host(f"kubectl://{pod}?namespace={spec.namespace}")
                for pod in _kubectl_pods(spec.namespace)
            ]
        return Target(
            option,
            f"{scheme}://{spec.domain}",
            spec,
            prometheus,
            hosts,
            ["/app/logs/server.log"] * len(hosts),
        )
    if option.startswith(("http://", "https://")):
        return Target("url", option.rstrip("/"), load_spec(stack or "staging"), prometheus)
    raise pytest.UsageError(f"--target {option!r}: use local, staging, production or a URL")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    config = request.config
    yield _resolve(config.getoption("--target"), config.getoption("--stack"), config.getoption("--prometheus-url"))


@pytest.fixture(scope="session")
def health(target: Target) -> dict[str, Any]:
    response = target.get("/health")
    assert response.status_code == 200, f"/health answered {response.status_code}: {response.text[:300]}"
    return dict(response.json())
