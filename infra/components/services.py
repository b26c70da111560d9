"""Every catalogue entry without a component of its own, from the generic renderers alone: on Kubernetes
its Deployment (or StatefulSet), Service and PodDisruptionBudget (its NetworkPolicy paths come with the
Foundation's), on Docker its container (and data volume). A new service is one entry and its image."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.catalogue import Entry, docker_hosts, running
from infra.components.container import container, data_volume
from infra.components.target import Target, checksum
from infra.components.workload import container as kubernetes_container
from infra.components.workload import disruption_budget, service, workload


class Service(pulumi.ComponentResource):
    workload: k8s.apps.v1.Deployment | k8s.apps.v1.StatefulSet | None = None
    service: k8s.core.v1.Service | None = None
    pdb: k8s.policy.v1.PodDisruptionBudget | None = None
    containers: list[docker.Container]
    volume: docker.Volume | None = None

    def __init__(self, entry: Entry, target: Target, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("living-codex:index:Service", entry.name, None, opts)
        self.containers = []
        if target.kubernetes:
            self._kubernetes(target, entry)
        else:
            self._docker(target, entry)
        self.register_outputs({"host": entry.host})

    def _kubernetes(self, target: Target, entry: Entry) -> None:
        mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # a read-only root otherwise
        if entry.kind == "statefulset":
            mounts.append({"name": "data", "mountPath": entry.data_path})
        server = kubernetes_container(target, entry, volumeMounts=mounts)
        spec = {} if entry.kind == "statefulset" else {"replicas": entry.replicas}
        volumes = [{"name": "tmp", "emptyDir": {}}]
        rollout = checksum(*entry.env.values())  # pods roll when their settings change
        self.workload = workload(self, target, entry, [server], rollout=rollout, volumes=volumes, spec=spec)
        self.service = service(self, target, entry)
        self.pdb = disruption_budget(self, target, entry)

    def _docker(self, target: Target, entry: Entry) -> None:
        if entry.data_path:
            self.volume = data_volume(self, target, entry)
        hosts = docker_hosts(entry)
        if len(hosts) == 1:
            self.containers.append(container(self, target, entry, volume=self.volume))
            return
        for index, host in enumerate(hosts, start=1):  # each its own name, as the app's replicas
            self.containers.append(container(self, target, entry, name=f"{entry.name}-{index}", host=host))


def generic_services(target: Target, opts: pulumi.ResourceOptions) -> list[Service]:
    """A Service component for each entry the platform runs that has no component of its own."""
    return [Service(entry, target, opts) for entry in running(target.spec) if not entry.bespoke]
