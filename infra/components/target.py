"""Where components are declared: a Docker network (staging) or a Kubernetes namespace (production)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.catalogue import replica_hosts
from infra.checkov_skips import skip_annotations
from infra.spec import EnvironmentSpec, quantity_bytes

PREFIX = "living-codex"
DIGEST = "@sha256:"
ROOT_PATH = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    spec: EnvironmentSpec
    network: docker.Network | None = None  # Docker
    secret_name: str = f"{PREFIX}-secrets"  # Kubernetes
    secret_sources: str = ""  # where each secret came from, for the policy pack
    secret_data: dict[str, pulumi.Output[str]] = field(default_factory=dict)  # the Secret's keys
    providers: list[pulumi.ProviderResource] = field(default_factory=list)  # every child's explicit provider
    registry: pulumi.ProviderResource | None = None  # looks images up in their registry (no daemon)
    prerequisites: list[str] = field(default_factory=list)  # what the cluster must already have, named

    def pinned(self, image: str) -> pulumi.Input[str]:
        """`image` by digest: as given when it carries one, else its tag resolved in the registry at preview
        (`name:tag@sha256:...`), so every pod and container runs exactly the image the preview saw. A real
        preview fails, naming the image, when the registry does not have the tag."""
        if DIGEST in image or self.registry is None:
            return image
        found = docker.get_registry_image_output(name=image, opts=pulumi.InvokeOutputOptions(provider=self.registry))
        prerequisite = f"image {image} published (preview resolves its digest in the registry)"
        if prerequisite not in self.prerequisites:
            self.prerequisites.append(prerequisite)
        digest: pulumi.Output[str] = found.sha256_digest
        return digest.apply(lambda value: f"{image}@{value}")

    def secret_checksum(self, *keys: str) -> pulumi.Output[str]:
        """Changes when any of the Secret's `keys` changes: a pod annotation that rolls the pods."""
        return checksum(*(self.secret_data[key] for key in keys))

    @property
    def production(self) -> bool:
        return self.spec.environment == "Production"

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
        return replica_hosts(self.spec)

    @property
    def canary_host(self) -> str | None:
        """A Docker rollout step's canary container (living-codex-app-canary), when the stack declares one."""
        return f"{self.host('app')}-canary" if self.spec.canary and not self.kubernetes else None

    @property
    def gateway_upstreams(self) -> list[str]:
        """nginx's resolver applies no search domains: in Kubernetes, the Service's full name."""
        if self.kubernetes:
            return [f"{self.host('app')}.{self.namespace}.svc.{self.spec.clusterDomain}"]
        return self.app_hosts

    @property
    def resolver(self) -> str:
        """The DNS server nginx re-resolves upstreams with: Docker's embedded one, or kube-dns."""
        return f"kube-dns.kube-system.svc.{self.spec.clusterDomain}" if self.kubernetes else "127.0.0.11"


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"{PREFIX}-{component}", "app.kubernetes.io/part-of": PREFIX}


def metadata(target: Target, component: str, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or f"{PREFIX}-{component}",
        "namespace": target.namespace,
        "labels": labels(component),
    }


def workload_metadata(target: Target, component: str) -> dict[str, Any]:
    """A workload's metadata, with the checkov findings it keeps on purpose (infra/checkov_skips.py)."""
    skips = skip_annotations(component)
    return {**metadata(target, component), **({"annotations": skips} if skips else {})}


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


def stateful(parent: pulumi.Resource, target: Target) -> pulumi.ResourceOptions:
    """Data outlives the resource: never deleted by Pulumi, and production refuses to replace it."""
    return pulumi.ResourceOptions(parent=parent, protect=target.production, retain_on_delete=True)


CHECKSUM_ANNOTATION = "living-codex.io/config-checksum"


def checksum(*values: pulumi.Input[str]) -> pulumi.Output[str]:
    """sha256 of configuration (secret values included, never revealed): pods roll when it changes."""
    return pulumi.Output.all(*values).apply(
        lambda resolved: hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
    )


def cpu_count(quantity: str) -> int:
    """Whole CPUs in a Kubernetes CPU quantity (500m -> 1, 2 -> 2): nginx workers for the limit."""
    cores = int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
    return max(1, int(-(-cores // 1)))


def megabytes(quantity: str) -> int:
    """A memory quantity as the Docker provider's `memory` (MB); 0 (none) when empty, which the pack refuses."""
    return quantity_bytes(quantity) // (1024 * 1024) if quantity else 0


def pvc(parent: pulumi.Resource, target: Target, component: str, storage: str, name: str) -> Any:
    """A standalone claim (not a StatefulSet template) so Pulumi can protect and retain it."""
    import pulumi_kubernetes as k8s

    return k8s.core.v1.PersistentVolumeClaim(
        name,
        metadata=metadata(target, component, f"{PREFIX}-{name}"),
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
        opts=stateful(parent, target),
    )


STATEFULSET_RETENTION = {"whenDeleted": "Retain", "whenScaled": "Retain"}  # claims outlive the StatefulSet


def data_claim(storage: str) -> dict[str, Any]:
    """The volume claim template of a single-replica datastore StatefulSet."""
    return {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
    }
