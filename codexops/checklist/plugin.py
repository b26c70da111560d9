"""pytest options and fixtures of the deployment checklist: the target comes resolved (a target file
written by the gate) or is resolved here from --target with codexops.targets."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import testinfra

from codexops import http_client
from codexops.targets import Target, TargetError, resolve_target

TIMEOUT = 5.0  # every HTTP check: a hung target fails the check, it never hangs the gate


@dataclass(frozen=True)
class Checked:
    """The resolved target with what the checks need: testinfra hosts, one per replica."""

    target: Target
    hosts: list[Any]  # testinfra hosts, each with the log path at the same index in log_paths
    log_paths: list[str]

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def spec(self) -> Any:
        return self.target.spec

    @property
    def url(self) -> str:
        return self.target.url

    @property
    def prometheus_url(self) -> str | None:
        return self.target.prometheus_url

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return http_client.get(self.url + path, timeout=TIMEOUT, **kwargs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deployment checklist")
    group.addoption("--target-file", default=None, help="a resolved target (JSON), as the gate writes it")
    group.addoption("--target", default=None, help="local, a stack name or a URL (resolved with codexops.targets)")
    group.addoption("--stack", default=None, help="for a URL target: whose spec applies (default staging)")
    group.addoption("--prometheus-url", default=None, help="Prometheus of the target")


def _kubectl_pods(namespace: str, context: str | None) -> list[str]:
    """The app's pods, through kubectl with KUBECONFIG (the workflow writes it from the stack's ESC
    environment) and the stack's kubernetes:context."""
    command = ["kubectl", *(["--context", context] if context else []), "get", "pods", "-n", namespace]
    result = subprocess.run(
        [*command, "-l", "app.kubernetes.io/name=living-codex-app", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return [line.split("/", 1)[1] for line in result.stdout.split()]


def checked(target: Target) -> Checked:
    if target.kind == "kubernetes":
        namespace = target.spec.namespace
        context = target.spec.providers.get("kubernetes:context")
        context = context if isinstance(context, str) else None
        pods = _kubectl_pods(namespace, context)
        query = f"namespace={namespace}" + (f"&context={context}" if context else "")
        hosts = [testinfra.get_host(f"kubectl://{pod}?{query}") for pod in pods]
        return Checked(target, hosts, ["/app/logs/server.log"] * len(hosts))
    return Checked(target, [testinfra.get_host(spec) for spec in target.app_hosts], list(target.log_paths))


def _target(config: pytest.Config) -> Target:
    path = config.getoption("--target-file")
    if path:
        return Target.load(Path(path))
    name = config.getoption("--target")
    if not name:
        raise pytest.UsageError("give --target-file (from codexops gate) or --target local|STACK|URL")
    try:
        return resolve_target(
            name, stack=config.getoption("--stack"), prometheus_url=config.getoption("--prometheus-url")
        )
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Checked]:
    yield checked(_target(request.config))


@pytest.fixture(scope="session")
def health(target: Checked) -> dict[str, Any]:
    response = target.get("/health")
    assert response.status_code == 200, f"/health answered {response.status_code}: {response.text[:300]}"
    return dict(response.json())
