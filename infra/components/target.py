"""Where components are declared: a Docker network (staging) or a Kubernetes namespace (production)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.spec import EnvironmentSpec

PREFIX = "living-codex"
ROOT_PATH = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    spec: EnvironmentSpec
    network: docker.Network | None = None  # Docker
    secret_name: str = f"{PREFIX}-secrets"  # Kubernetes
    secret_sources: str = ""  # where each secret came from, for the policy pack

    @property
    def kubernetes(self) -> bool:
        return self.spec.platform == "kubernetes"

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    def host(self, service: str) -> str:
        """How other services reach `service`: its container or Kubernetes Service name."""
        return f"{PREFIX}-{service}"

    @property
    def app_hosts(self) -> list[str]:
        """The app as the gateway and Prometheus reach it: each container, or the one Service."""
        if self.kubernetes:
            return [self.host("app")]
        return [f"{self.host('app')}-{i + 1}" for i in range(self.spec.replicas)]


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"{PREFIX}-{component}", "app.kubernetes.io/part-of": PREFIX}


def metadata(target: Target, component: str, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or f"{PREFIX}-{component}",
        "namespace": target.namespace,
        "labels": labels(component),
    }


def restricted_container() -> dict[str, Any]:
    """The Pod Security 'restricted' profile for a container."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    """Requests and limits; an empty value is left out (and the policy pack says so)."""
    requests = {k: v for k, v in (("cpu", cpu_request), ("memory", memory_request)) if v}
    limits = {k: v for k, v in (("cpu", cpu_limit), ("memory", memory_limit)) if v}
    return {"requests": requests, "limits": limits}


def docker_healthcheck(test: list[str]) -> dict[str, Any]:
    return {"tests": test, "interval": "10s", "timeout": "3s", "retries": 5, "start_period": "10s"}


def docker_network(target: Target, alias: str) -> list[dict[str, Any]]:
    assert target.network is not None
    return [{"name": target.network.name, "aliases": [alias]}]


def child(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent)


def data_claim(storage: str) -> dict[str, Any]:
    """The volume claim template of a single-replica datastore StatefulSet."""
    return {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
    }


def headless_service(parent: pulumi.Resource, target: Target, component: str, port: int) -> Any:
    """The stable DNS name a StatefulSet's pod is reached by."""
    import pulumi_kubernetes as k8s

    return k8s.core.v1.Service(
        component,
        metadata=metadata(target, component),
        spec={
            "clusterIP": "None",
            "selector": labels(component),
            "ports": [{"name": component, "port": port, "targetPort": port}],
        },
        opts=child(parent),
    )
