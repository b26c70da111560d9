"""Redis: a password always; TLS in production with a certificate from the internal CA; maxmemory under
its memory limit so a full Redis answers with an error instead of being OOM-killed."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import catalogue
from infra.catalogue import REDIS_PORT as PORT
from infra.components.container import container, data_volume
from infra.components.issuers import WAIT_READY
from infra.components.target import Target, child, metadata
from infra.components.workload import container as kubernetes_container
from infra.components.workload import service, workload
from infra.reload_scripts import redis_with_reload
from infra.spec import RedisSpec, quantity_bytes

REDIS_IMAGE_USER = "999:1000"  # redis:*-alpine's redis user and group


def memory_args(store: RedisSpec) -> str:
    """`--maxmemory` a share of the container's limit (replication and fragmentation need the rest)."""
    limit = quantity_bytes(store.resources.memoryLimit)
    return f"--maxmemory {limit * store.maxmemoryPercent // 100} --maxmemory-policy {store.maxmemoryPolicy} "


class Redis(pulumi.ComponentResource):
    host: str
    container: docker.Container | None = None
    volume: docker.Volume | None = None
    service: k8s.core.v1.Service | None = None
    statefulset: k8s.apps.v1.StatefulSet | None = None
    certificate: k8s.apiextensions.CustomResource | None = None

    def __init__(
        self,
        name: str,
        target: Target,
        password: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("living-codex:index:Redis", name, None, opts)
        store = target.spec.redis
        self.host = store.externalHost or target.host("redis")
        self.port = PORT
        self.tls = store.tls
        self.tls_secret = f"{target.host('redis')}-tls"
        if store.mode == "external":
            pass
        elif target.kubernetes:
            self._kubernetes(target)
        else:
            self._docker(target, password)
        self.register_outputs({"host": self.host})

    def _docker(self, target: Target, password: pulumi.Output[str]) -> None:
        store, entry = target.spec.redis, catalogue.entry(target.spec, "redis")
        self.volume = data_volume(self, target, entry)
        self.container = container(
            self,
            target,
            entry,
            volume=self.volume,
            health=["CMD-SHELL", 'redis-cli -a "$REDIS_PASSWORD" ping | grep PONG'],
            # The image's redis user (the command bypasses its entrypoint, which would drop root itself);
            # a new volume takes the image's /data, owned by it.
            user=REDIS_IMAGE_USER,
            envs=[pulumi.Output.concat("REDIS_PASSWORD=", password)],
            command=[
                "sh",
                "-c",
                f'exec redis-server --requirepass "$REDIS_PASSWORD" {memory_args(store)}--appendonly yes --dir /data',
            ],
            wait=True,  # `pulumi up` goes on to the app only once Redis is healthy
            wait_timeout=120,
        )

    def _kubernetes(self, target: Target) -> None:
        store, entry = target.spec.redis, catalogue.entry(target.spec, "redis")
        if self.tls:
            self.certificate = k8s.apiextensions.CustomResource(
                "redis-tls",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={**metadata(target, "redis", self.tls_secret), "annotations": WAIT_READY},
                spec={
                    "secretName": self.tls_secret,
                    "issuerRef": {"name": target.spec.internalIssuer, "kind": "ClusterIssuer"},
                    "dnsNames": [self.host, f"{self.host}.{target.namespace}.svc"],
                },
                opts=child(self),
            )
        self.service = service(self, target, entry)
        tls_args = (
            (
                "--port 0 --tls-port 6379 --tls-cert-file /tls/tls.crt --tls-key-file /tls/tls.key "
                "--tls-ca-cert-file /tls/ca.crt --tls-auth-clients no "
            )
            if self.tls
            else ""
        )
        ping = "redis-cli --tls --cacert /tls/ca.crt" if self.tls else "redis-cli"
        probe = {
            "exec": {"command": ["sh", "-c", f'{ping} -a "$REDIS_PASSWORD" ping | grep PONG']},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
        }
        mounts: list[dict[str, object]] = [{"name": "data", "mountPath": "/data"}]
        volumes: list[dict[str, object]] = []
        if self.tls:
            mounts.append({"name": "tls", "mountPath": "/tls", "readOnly": True})
            volumes.append({"name": "tls", "secret": {"secretName": self.tls_secret}})
        server = (
            f'redis-server {tls_args}--requirepass "$REDIS_PASSWORD" {memory_args(store)}--appendonly yes --dir /data'
        )
        # With TLS, a renewed certificate is loaded in place (CONFIG SET; infra/reload_scripts.py).
        command = redis_with_reload(server, "/tls") if self.tls else f"exec {server}"
        password = {"secretKeyRef": {"name": target.secret_name, "key": "redisPassword"}}
        self.statefulset = workload(
            self,
            target,
            entry,
            [
                kubernetes_container(
                    target,
                    entry,
                    command=["sh", "-c", command],
                    env=[
                        {"name": "REDIS_PASSWORD", "valueFrom": password},
                        {"name": "REDISCLI_AUTH", "valueFrom": password},  # the reload's redis-cli
                    ],
                    readinessProbe=probe,
                    livenessProbe={**probe, "initialDelaySeconds": 15},
                    volumeMounts=mounts,
                )
            ],
            rollout=target.secret_checksum("redisPassword"),
            volumes=volumes,
            # The pod mounts the certificate's Secret: start it once cert-manager has issued it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[c for c in [self.certificate] if c]),
        )
