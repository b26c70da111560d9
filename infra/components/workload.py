"""A catalogue entry as Kubernetes objects: its Deployment or StatefulSet, Service and PodDisruptionBudget
(its NetworkPolicy paths are the Foundation's, from the same entries). What a service alone needs (a
probe, a command, mounts) is passed in as `container`, `pod` and `spec` extras over the generic shape."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.catalogue import Entry
from infra.components.target import (
    CHECKSUM_ANNOTATION,
    STATEFULSET_RETENTION,
    Target,
    child,
    data_claim,
    labels,
    metadata,
    pod_security,
    resources,
    restricted_container,
    workload_metadata,
)


def limits(entry: Entry) -> dict[str, Any]:
    r = entry.resources
    return resources(r.cpuRequest, r.memoryRequest, r.cpuLimit, r.memoryLimit)


def probe(entry: Entry, period: int) -> dict[str, Any]:
    """A TCP connect on the entry's first port; a service with a better check passes its own."""
    return {"tcpSocket": {"port": entry.port}, "periodSeconds": period}


def container(target: Target, entry: Entry, **extra: Any) -> dict[str, Any]:
    """The entry's container: its pinned image, named ports, resources, the restricted profile, probes."""
    return {
        "name": entry.name,
        "image": target.pinned(entry.image),
        "ports": [{"containerPort": port, "name": name} for name, port in entry.ports.items()],
        "securityContext": restricted_container(),
        "readinessProbe": probe(entry, 10),
        "livenessProbe": probe(entry, 20),
        "resources": limits(entry),
        **({"env": [{"name": k, "value": v} for k, v in entry.env.items()]} if entry.env else {}),
        **extra,
    }


def workload(
    parent: pulumi.Resource,
    target: Target,
    entry: Entry,
    containers: list[dict[str, Any]],
    *,
    rollout: pulumi.Input[str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    pod: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> k8s.apps.v1.Deployment | k8s.apps.v1.StatefulSet:
    """A Deployment, or for a `statefulset` entry a StatefulSet with a retained data claim template."""
    template_annotations = {**(annotations or {}), **({CHECKSUM_ANNOTATION: rollout} if rollout is not None else {})}
    body: dict[str, Any] = {
        "selector": {"matchLabels": labels(entry.name)},
        "template": {
            "metadata": {"labels": labels(entry.name), "annotations": template_annotations},
            "spec": {
                "securityContext": pod_security(entry.uid),
                "automountServiceAccountToken": False,
                "containers": containers,
                "volumes": volumes or [],
                **(pod or {}),
            },
        },
    }
    if entry.kind == "statefulset":
        body |= {
            "serviceName": entry.host,
            "replicas": entry.replicas,
            "persistentVolumeClaimRetentionPolicy": STATEFULSET_RETENTION,
            "volumeClaimTemplates": [data_claim(entry.storage)],
        }
    body |= spec or {}
    kind = k8s.apps.v1.StatefulSet if entry.kind == "statefulset" else k8s.apps.v1.Deployment
    named = meta or workload_metadata(target, entry.name)
    return kind(entry.name, metadata=named, spec=body, opts=opts or child(parent))


def service(
    parent: pulumi.Resource, target: Target, entry: Entry, *, named_ports: bool = False, **spec: Any
) -> k8s.core.v1.Service:
    """ClusterIP on the entry's ports; headless for a StatefulSet (its pod's stable DNS name)."""
    ports = [
        {"name": name, "port": port, "targetPort": name if named_ports else port} for name, port in entry.ports.items()
    ]
    kind = {"clusterIP": "None"} if entry.kind == "statefulset" else {"type": "ClusterIP"}
    return k8s.core.v1.Service(
        entry.name,
        metadata=metadata(target, entry.name),
        spec={"selector": labels(entry.name), **kind, "ports": ports, **spec},
        opts=child(parent),
    )


def disruption_budget(parent: pulumi.Resource, target: Target, entry: Entry) -> k8s.policy.v1.PodDisruptionBudget:
    """At most one pod down in a voluntary disruption (a node drain)."""
    return k8s.policy.v1.PodDisruptionBudget(
        entry.name,
        metadata=metadata(target, entry.name),
        # AlwaysAllow: a crash-looping pod never blocks a node drain (it serves nothing anyway).
        spec={
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels(entry.name)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
        opts=child(parent),
    )
