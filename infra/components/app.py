"""The Living Codex app: replicas of one pinned image, probes on /health/live and /health/ready,
and a shutdown that matches the service's graceful drain."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import catalogue
from infra.checkov_skips import skip_annotations
from infra.components.canary import scaled_workload
from infra.components.container import container
from infra.components.target import (
    ROOT_PATH,
    Target,
    checksum,
    child,
    labels,
    metadata,
)
from infra.components.workload import container as kubernetes_container
from infra.components.workload import disruption_budget, service, workload
from infra.providers import docker_config_json
from infra.secrets import SOURCES_ANNOTATION
from infra.spec import EnvironmentSpec

APP_UID = 10001  # the non-root user of app/Dockerfile
DIGEST = "@sha256:"
IMAGE_ANNOTATION = "living-codex.io/image-configured"  # read by the policy pack


def released(spec: EnvironmentSpec) -> str:
    """The stack's image; infra/program.py refuses a stack without one before any component is built."""
    if not spec.image:
        raise ValueError(f"no release promoted to {spec.stack} yet")
    return spec.image


class App(pulumi.ComponentResource):
    image_ref: pulumi.Input[str]
    image: docker.Image | None = None
    containers: list[docker.Container]
    canary: docker.Container | None = None  # Docker: a rollout step's canary beside the serving replicas
    config_map: k8s.core.v1.ConfigMap | None = None
    deployment: k8s.apps.v1.Deployment | None = None
    service: k8s.core.v1.Service | None = None
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None = None
    pdb: k8s.policy.v1.PodDisruptionBudget | None = None
    pull_secret: k8s.core.v1.Secret | None = None

    def __init__(
        self,
        name: str,
        target: Target,
        secret_env: dict[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("living-codex:index:App", name, None, opts)
        self.containers = []
        self.hosts: list[str] = []
        self.host = target.host("app")
        self.port = target.spec.ports.app
        self.entry = catalogue.entry(target.spec, "app")
        env = dict(self.entry.env)
        if target.kubernetes:
            self._kubernetes(target, env, list(secret_env))
        else:
            self._docker(target, env, secret_env)
        self.register_outputs({"image": self.image_ref})

    # -- staging --------------------------------------------------------------------------
    def _docker(self, target: Target, env: dict[str, str], secret_env: dict[str, pulumi.Output[str]]) -> None:
        spec = target.spec
        image = released(spec)
        if DIGEST in image:  # the pipeline's pushed image
            self.image_ref = image
        else:  # built here; the digest (not the tag) makes a rebuild replace the containers
            self.image = docker.Image(
                "app-image",
                image_name=image,
                skip_push=True,
                build={
                    "context": str(ROOT_PATH),
                    "dockerfile": str(ROOT_PATH / "app" / "Dockerfile"),
                    "platform": "linux/amd64",
                },
                opts=child(self),
            )
            self.image_ref = self.image.repo_digest
        secrets: list[pulumi.Input[str]] = [pulumi.Output.concat(k, "=", v) for k, v in secret_env.items()]
        self.hosts = target.app_hosts
        for index, host in enumerate(self.hosts, start=1):
            self.containers.append(self._replica(target, f"app-{index}", host, self.image_ref, env, secrets))
        if spec.canary and target.canary_host:  # a rollout step (codexops/releases/docker_canary.py)
            canary_env = {**env, "CODEX_RELEASE": spec.canary.release}  # its metrics say its release
            self.canary = self._replica(
                target, "app-canary", target.canary_host, target.pinned(spec.canary.image), canary_env, secrets
            )

    def _replica(
        self,
        target: Target,
        name: str,
        host: str,
        image: pulumi.Input[str],
        env: dict[str, str],
        secrets: list[pulumi.Input[str]],
    ) -> docker.Container:
        shutdown = target.spec.shutdown
        return container(
            self,
            target,
            self.entry,
            name=name,
            host=host,
            image=image,
            health=[
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{self.port}{self.entry.health}')",
            ],
            envs=[f"{k}={v}" for k, v in env.items()] + secrets,
            labels=[{"label": SOURCES_ANNOTATION, "value": target.secret_sources}],
            stop_timeout=shutdown.drainSeconds + shutdown.graceSeconds + 5,
            wait=True,  # the gateway is declared after the app: it starts on healthy replicas
            wait_timeout=120,
        )

    # -- production -----------------------------------------------------------------------
    def _pull_secret(self, target: Target) -> list[dict[str, str]]:
        """GHCR packages are private by default: the pods pull with living-codex:registry's login."""
        config = docker_config_json(target.spec)
        if config is None:
            return []
        name = f"{self.host}-registry"
        self.pull_secret = k8s.core.v1.Secret(
            "app-registry",
            metadata=metadata(target, "app", name),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": config},
            opts=child(self),
        )
        return [{"name": name}]

    def _kubernetes(self, target: Target, env: dict[str, str], secret_keys: list[str]) -> None:
        spec = target.spec
        component = "app"
        self.image_ref = target.pinned(released(spec))
        pull_secrets = self._pull_secret(target)
        self.hosts = target.app_hosts
        # Autonamed (app-config-<suffix>): a release changes its data (CODEX_RELEASE), and a fixed name would
        # make Pulumi delete the immutable ConfigMap before creating it again, a gap in which starting pods
        # fail. A new name per content is created first, and the Deployment rolls onto it.
        named = metadata(target, component)
        del named["name"]
        self.config_map = k8s.core.v1.ConfigMap("app-config", metadata=named, data=env, opts=child(self))
        drain, grace = spec.shutdown.drainSeconds, spec.shutdown.graceSeconds
        http = {"port": "http"}
        server = kubernetes_container(
            target,
            self.entry,
            imagePullPolicy="IfNotPresent",
            envFrom=[{"configMapRef": {"name": self.config_map.metadata.name}}],
            env=[
                {"name": key, "valueFrom": {"secretKeyRef": {"name": target.secret_name, "key": key}}}
                for key in secret_keys
            ],
            startupProbe={"httpGet": {"path": "/health/live", **http}, "periodSeconds": 2, "failureThreshold": 30},
            livenessProbe={
                "httpGet": {"path": "/health/live", **http},
                "periodSeconds": 10,
                "timeoutSeconds": 3,
                "failureThreshold": 3,
            },
            readinessProbe={
                "httpGet": {"path": self.entry.health, **http},
                "periodSeconds": 5,
                "timeoutSeconds": 3,
                "failureThreshold": 2,
            },
            # The pause lets endpoints drop this pod before SIGTERM; then the app drains itself.
            lifecycle={"preStop": {"sleep": {"seconds": drain}}},
            volumeMounts=[{"name": "logs", "mountPath": "/app/logs"}, {"name": "tmp", "mountPath": "/tmp"}]
            + ([{"name": "redis-tls", "mountPath": "/etc/redis-tls", "readOnly": True}] if spec.redis.tls else []),
        )
        volumes: list[dict[str, Any]] = [{"name": "logs", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
        if spec.redis.tls:
            volumes.append(
                {
                    "name": "redis-tls",
                    "secret": {
                        "secretName": f"{target.host('redis')}-tls",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    },
                }
            )
        self.deployment = workload(
            self,
            target,
            self.entry,
            [server],
            # Pods roll when their settings or secrets change.
            rollout=checksum(json.dumps(env, sort_keys=True), target.secret_checksum(*secret_keys)),
            annotations={"prometheus.io/scrape": "true", "prometheus.io/path": self.entry.metrics},
            volumes=volumes,
            pod={
                "terminationGracePeriodSeconds": drain + grace + 10,
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": key,
                        "whenUnsatisfiable": mode,
                        "labelSelector": {"matchLabels": labels(component)},
                    }
                    for key, mode in (
                        ("topology.kubernetes.io/zone", "ScheduleAnyway"),
                        ("kubernetes.io/hostname", "ScheduleAnyway"),
                    )
                ],
                **({"imagePullSecrets": pull_secrets} if pull_secrets else {}),
            },
            # no replicas: the autoscaler owns them, and `pulumi up` must not scale in
            spec={
                "revisionHistoryLimit": 5,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            },
            # The configured reference beside the resolved digest: the policy pack checks both.
            meta={
                **metadata(target, component),
                "annotations": {IMAGE_ANNOTATION: released(spec), **skip_annotations(component)},
            },
        )
        self.service = service(self, target, self.entry, named_ports=True)
        scaling = spec.autoscaling
        # Without the resource metrics API the HPA reads no CPU or memory and never scales.
        target.prerequisites.append(
            "metrics-server (the resource metrics API the HPA scales on): https://github.com/kubernetes-sigs/metrics-server"
        )
        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            "app",
            metadata=metadata(target, component),
            spec={
                "scaleTargetRef": scaled_workload(spec, self.host),
                "minReplicas": max(scaling.minReplicas, 1),
                "maxReplicas": scaling.maxReplicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": scaling.cpuPercent},
                        },
                    },
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "memory",
                            "target": {"type": "Utilization", "averageUtilization": scaling.memoryPercent},
                        },
                    },
                ],
            },
            opts=child(self),
        )
        self.pdb = disruption_budget(self, target, self.entry)
