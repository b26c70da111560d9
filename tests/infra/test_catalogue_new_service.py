"""A new service is one catalogue entry plus its image: a throw-away worker, added as one builder, is
rendered on every platform (Kubernetes objects, a Docker container, a supervisor program), reached only
by its peers and scraped by Prometheus."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from codexops import localenv
from infra import catalogue
from infra.app_env import Platform
from infra.catalogue import Access, Entry, LocalProgram
from infra.mock_runtime import Declaration, declare, with_release
from infra.spec import EnvironmentSpec, Resources, load_spec
from policies import docker, kubernetes, security
from tests.policies.conftest import check

WORKER_IMAGE = "ghcr.io/living-codex/worker:0.1.0@sha256:" + "0123456789abcdef" * 4  # its image, by digest
PORT = 8090
DEPLOYMENT, SERVICE, PDB = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:core/v1:Service",
    "kubernetes:policy/v1:PodDisruptionBudget",
)
NETWORK_POLICY, CONTAINER = "kubernetes:networking.k8s.io/v1:NetworkPolicy", "docker:index/container:Container"


def worker(spec: EnvironmentSpec, platform: Platform) -> Entry:
    """The whole declaration of the new service."""
    return Entry(
        "worker",
        WORKER_IMAGE,
        {"http": PORT},
        Resources(cpuRequest="50m", cpuLimit="200m", memoryRequest="64Mi", memoryLimit="128Mi"),
        replicas=2,
        health="/ready",
        access=(Access("http", ("app",)),),
        env={"WORKER_QUEUE": "default"},
        metrics="/metrics",
        local=LocalProgram("{bin} -m http.server {port} --bind {host}", sys.executable, local_offset=5),
    )


@pytest.fixture
def with_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "BUILDERS", (*catalogue.BUILDERS, worker))


def _prometheus_jobs(text: str) -> dict[str, list[str]]:
    config = yaml.safe_load(text)
    return {job["job_name"]: job.get("static_configs", [{}])[0].get("targets", []) for job in config["scrape_configs"]}


def test_kubernetes_runs_it_as_a_deployment_service_and_budget_reached_only_by_its_peers(with_worker: None) -> None:
    production = declare(with_release(load_spec("production")))
    deployment = production.one(DEPLOYMENT, "worker")
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert deployment.inputs["spec"]["replicas"] == 2
    assert pod["containers"][0]["image"] == WORKER_IMAGE
    assert pod["containers"][0]["ports"] == [{"containerPort": PORT, "name": "http"}]
    assert {"name": "WORKER_QUEUE", "value": "default"} in pod["containers"][0]["env"]
    assert production.one(SERVICE, "worker").inputs["spec"]["ports"] == [
        {"name": "http", "port": PORT, "targetPort": PORT}
    ]
    assert production.one(PDB, "worker").inputs["spec"]["maxUnavailable"] == 1
    # Its parent is the generic Service component: one per entry, nothing written for it by hand.
    assert deployment.parent.endswith("living-codex:index:Service::worker")

    ingress = production.one(NETWORK_POLICY, "worker-from-app").inputs["spec"]
    assert ingress["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "living-codex-worker"
    assert ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": PORT}]
    assert ingress["ingress"][0]["from"] == [{"podSelector": {"matchLabels": _labels("app")}}]
    egress = production.one(NETWORK_POLICY, "app-to-worker").inputs["spec"]
    assert egress["egress"][0]["to"] == [{"podSelector": {"matchLabels": _labels("worker")}}]

    config = production.one("kubernetes:core/v1:ConfigMap", "prometheus-config").inputs["data"]["prometheus.yml"]
    assert _prometheus_jobs(config)["worker"] == [f"living-codex-worker:{PORT}"]
    _complies(production, (DEPLOYMENT, SERVICE, PDB), (*kubernetes.POLICIES, *security.POLICIES))


def test_docker_runs_a_container_per_replica_and_prometheus_scrapes_each(with_worker: None) -> None:
    staging = declare(with_release(load_spec("staging")))
    for index in (1, 2):
        inputs = staging.one(CONTAINER, f"worker-{index}").inputs
        assert inputs["name"] == f"living-codex-worker-{index}"
        assert inputs["image"] == WORKER_IMAGE
        assert "WORKER_QUEUE=default" in inputs["envs"]
        assert inputs["healthcheck"]["tests"] == ["CMD", "wget", "-qO-", f"http://127.0.0.1:{PORT}/ready"]
    uploads = staging.one(CONTAINER, "prometheus").inputs["uploads"]
    config = next(u["content"] for u in uploads if u["file"].endswith("prometheus.yml"))
    assert _prometheus_jobs(config)["worker"] == [f"living-codex-worker-{i}:{PORT}" for i in (1, 2)]
    _complies(staging, (CONTAINER,), docker.POLICIES)


def test_the_local_environment_runs_it_under_supervisord_on_its_own_port(
    with_worker: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path))
    stack = localenv.LocalStack(load_spec("staging"))
    port = localenv.stack_ports(stack.spec).gateway + 5
    assert localenv.Process("worker", port, "/ready") in stack.processes
    config = localenv.supervisor_config(stack, {}, {"releases": {}, "app_env": {}})
    program = config.split("[program:worker]\n", 1)[1].split("\n\n", 1)[0]
    assert f"command={sys.executable} -m http.server {port} --bind {localenv.HOST}" in program
    assert f"directory={stack.runtime / 'worker'}" in program and "autostart=false" in program
    prometheus = next(text for path, text in localenv.rendered_files(stack).items() if path.name == "prometheus.yml")
    assert _prometheus_jobs(prometheus)["worker"] == [f"{localenv.HOST}:{port}"]


def test_without_the_entry_none_of_it_exists() -> None:
    production = declare(with_release(load_spec("production")))
    assert not [r.name for r in production.resources if "worker" in r.name]
    assert "worker" not in [p.name for p in localenv.LocalStack(load_spec("staging")).processes]


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"living-codex-{component}", "app.kubernetes.io/part-of": "living-codex"}


def _complies(declaration: Declaration, types: tuple[str, ...], policies: Sequence[Any]) -> None:
    """The policy pack passes the worker's resources as it passes the rest."""
    resources = [r for r in declaration.custom() if r.type in types and r.name.startswith("worker")]
    assert resources
    for resource in resources:
        for policy in policies:
            assert check(policy, resource.type, resource.inputs) == [], (getattr(policy, "name", policy), resource.name)
