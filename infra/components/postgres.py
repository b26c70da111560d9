"""PostgreSQL: a container with a volume (staging), a StatefulSet with a volume claim (production),
or an external managed server (by config)."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import images
from infra.components.target import (
    Target,
    child,
    data_claim,
    docker_healthcheck,
    docker_network,
    headless_service,
    labels,
    metadata,
    pod_security,
    resources,
    restricted_container,
)

PORT = 5432


class Postgres(pulumi.ComponentResource):
    host: str
    container: docker.Container | None = None
    volume: docker.Volume | None = None
    service: k8s.core.v1.Service | None = None
    statefulset: k8s.apps.v1.StatefulSet | None = None

    def __init__(
        self,
        name: str,
        target: Target,
        password: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("living-codex:index:Postgres", name, None, opts)
        store = target.spec.postgres
        self.host = store.externalHost or target.host("postgres")
        self.port = PORT
        if store.mode == "external":
            pass  # a managed server: only its address and the password are used
        elif target.kubernetes:
            self._kubernetes(target, password)
        else:
            self._docker(target, password)
        self.register_outputs({"host": self.host})

    def _docker(self, target: Target, password: pulumi.Output[str]) -> None:
        self.volume = docker.Volume("postgres-data", name=f"{self.host}-data", opts=child(self))
        self.container = docker.Container(
            "postgres",
            name=self.host,
            image=images.POSTGRES,
            restart="unless-stopped",
            memory=512,
            networks_advanced=docker_network(target, self.host),
            envs=[
                pulumi.Output.concat("POSTGRES_PASSWORD=", password),
                "POSTGRES_USER=codex",
                "POSTGRES_DB=livingcodex",
            ],
            volumes=[{"volume_name": self.volume.name, "container_path": "/var/lib/postgresql/data"}],
            healthcheck=docker_healthcheck(["CMD-SHELL", "pg_isready -U codex -d livingcodex"]),
            opts=child(self),
        )

    def _kubernetes(self, target: Target, password: pulumi.Output[str]) -> None:
        component = "postgres"
        self.service = headless_service(self, target, component, PORT)
        probe = {
            "exec": {"command": ["pg_isready", "-U", "codex", "-d", "livingcodex"]},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
        }
        self.statefulset = k8s.apps.v1.StatefulSet(
            "postgres",
            metadata=metadata(target, component),
            spec={
                "serviceName": self.host,
                "replicas": 1,
                "selector": {"matchLabels": labels(component)},
                "template": {
                    "metadata": {"labels": labels(component)},
                    "spec": {
                        "securityContext": pod_security(70),  # the alpine image's postgres user
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": "postgres",
                                "image": images.POSTGRES,
                                "ports": [{"containerPort": PORT, "name": "postgres"}],
                                "env": [
                                    {"name": "POSTGRES_USER", "value": "codex"},
                                    {"name": "POSTGRES_DB", "value": "livingcodex"},
                                    {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                                    {
                                        "name": "POSTGRES_PASSWORD",
                                        "valueFrom": {
                                            "secretKeyRef": {
                                                "name": target.secret_name,
                                                "key": "postgresPassword",
                                            }
                                        },
                                    },
                                ],
                                "resources": resources("250m", "256Mi", "1", "1Gi"),
                                "securityContext": restricted_container(),
                                "readinessProbe": probe,
                                "livenessProbe": {**probe, "initialDelaySeconds": 30},
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                    {"name": "run", "mountPath": "/var/run/postgresql"},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                    },
                },
                "volumeClaimTemplates": [data_claim(target.spec.postgres.storage)],
            },
            opts=child(self),
        )
