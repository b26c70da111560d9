"""Prometheus (scrape config and the generated alert rules), Grafana (provisioned), Jaeger."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import images
from infra.alerts import render_alert_rules
from infra.components.target import (
    Target,
    child,
    docker_healthcheck,
    docker_network,
    labels,
    metadata,
    pod_security,
    resources,
    restricted_container,
)
from infra.dashboard import GRAFANA_DASHBOARD_PROVIDER, GRAFANA_DATASOURCE, render_dashboard
from infra.render import render_prometheus

PROMETHEUS_PORT, GRAFANA_PORT, OTLP_HTTP_PORT, JAEGER_UI_PORT = 9090, 3000, 4318, 16686


class Observability(pulumi.ComponentResource):
    prometheus_config: str
    alert_rules: str
    containers: dict[str, docker.Container]
    deployments: dict[str, k8s.apps.v1.Deployment]
    services: dict[str, k8s.core.v1.Service]
    config_maps: dict[str, k8s.core.v1.ConfigMap]

    def __init__(
        self, name: str, target: Target, app_targets: list[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("living-codex:index:Observability", name, None, opts)
        spec = target.spec
        self.containers, self.deployments, self.services, self.config_maps = {}, {}, {}, {}
        self.otlp_endpoint = f"http://{target.host('jaeger')}:{OTLP_HTTP_PORT}"
        self.prometheus_config = render_prometheus(
            spec, app_targets, rules_path="/etc/prometheus/alert-rules.yml", kubernetes_sd=target.kubernetes
        )
        self.alert_rules = render_alert_rules(spec)
        self.datasource = GRAFANA_DATASOURCE.format(url=f"http://{target.host('prometheus')}:{PROMETHEUS_PORT}")
        self.dashboard = render_dashboard(spec)
        if target.kubernetes:
            self._kubernetes(target)
        else:
            self._docker(target)
        self.register_outputs({"otlpEndpoint": self.otlp_endpoint})

    # -- staging --------------------------------------------------------------------------
    def _container(
        self, target: Target, service: str, image: str, memory: int, health: list[str], **extra: Any
    ) -> None:
        host = target.host(service)
        self.containers[service] = docker.Container(
            service,
            name=host,
            image=image,
            restart="unless-stopped",
            memory=memory,
            networks_advanced=docker_network(target, host),
            healthcheck=docker_healthcheck(health),
            opts=child(self),
            **extra,
        )

    def _docker(self, target: Target) -> None:
        self._container(
            target,
            "prometheus",
            images.PROMETHEUS,
            512,
            ["CMD", "wget", "-qO-", f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready"],
            uploads=[
                {"file": "/etc/prometheus/prometheus.yml", "content": self.prometheus_config},
                {"file": "/etc/prometheus/alert-rules.yml", "content": self.alert_rules},
            ],
        )
        self._container(
            target,
            "grafana",
            images.GRAFANA,
            256,
            ["CMD", "wget", "-qO-", f"http://127.0.0.1:{GRAFANA_PORT}/api/health"],
            envs=["GF_AUTH_ANONYMOUS_ENABLED=false"],
            uploads=self._grafana_files(),
        )
        self._container(target, "jaeger", images.JAEGER, 512, ["CMD", "wget", "-qO-", "http://127.0.0.1:14269/"])

    def _grafana_files(self) -> list[dict[str, str]]:
        base = "/etc/grafana/provisioning"
        return [
            {"file": f"{base}/datasources/prometheus.yml", "content": self.datasource},
            {"file": f"{base}/dashboards/living-codex.yml", "content": GRAFANA_DASHBOARD_PROVIDER},
            {"file": "/var/lib/grafana/dashboards/living-codex.json", "content": self.dashboard},
        ]

    # -- production -----------------------------------------------------------------------
    def _deployment(
        self,
        target: Target,
        service: str,
        image: str,
        port: int,
        uid: int,
        container: dict[str, Any],
        volumes: list[dict[str, Any]],
        service_account: str | None = None,
    ) -> None:
        pod: dict[str, Any] = {
            "securityContext": pod_security(uid),
            "automountServiceAccountToken": service_account is not None,
            "containers": [
                {
                    "name": service,
                    "image": image,
                    "ports": [{"containerPort": port, "name": "http"}],
                    "securityContext": restricted_container(),
                    "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 10},
                    "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 20},
                    **container,
                }
            ],
            "volumes": volumes,
        }
        if service_account:
            pod["serviceAccountName"] = service_account
        self.deployments[service] = k8s.apps.v1.Deployment(
            service,
            metadata=metadata(target, service),
            spec={
                "replicas": 1,
                "selector": {"matchLabels": labels(service)},
                "template": {"metadata": {"labels": labels(service)}, "spec": pod},
            },
            opts=child(self),
        )

    def _service(self, target: Target, service: str, ports: list[tuple[str, int]]) -> None:
        self.services[service] = k8s.core.v1.Service(
            service,
            metadata=metadata(target, service),
            spec={
                "selector": labels(service),
                "type": "ClusterIP",
                "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports],
            },
            opts=child(self),
        )

    def _config_map(self, target: Target, service: str, data: dict[str, str]) -> str:
        name = f"{target.host(service)}-config"
        self.config_maps[service] = k8s.core.v1.ConfigMap(
            f"{service}-config", metadata=metadata(target, service, name), data=data, opts=child(self)
        )
        return name

    def _kubernetes(self, target: Target) -> None:
        account = target.host("prometheus")
        self.service_account = k8s.core.v1.ServiceAccount(
            "prometheus", metadata=metadata(target, "prometheus"), opts=child(self)
        )
        self.role = k8s.rbac.v1.Role(
            "prometheus",
            metadata=metadata(target, "prometheus"),
            rules=[
                {
                    "apiGroups": [""],
                    "resources": ["pods", "endpoints", "services"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
            opts=child(self),
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            "prometheus",
            metadata=metadata(target, "prometheus"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            subjects=[{"kind": "ServiceAccount", "name": account, "namespace": target.namespace}],
            opts=child(self),
        )
        prom_config = self._config_map(
            target,
            "prometheus",
            {"prometheus.yml": self.prometheus_config, "alert-rules.yml": self.alert_rules},
        )
        self._deployment(
            target,
            "prometheus",
            images.PROMETHEUS,
            PROMETHEUS_PORT,
            65534,
            {
                "args": [
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    "--storage.tsdb.retention.time=15d",
                ],
                "resources": resources("200m", "512Mi", "1", "2Gi"),
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/prometheus"},
                    {"name": "data", "mountPath": "/prometheus"},
                ],
            },
            [{"name": "config", "configMap": {"name": prom_config}}, {"name": "data", "emptyDir": {}}],
            service_account=account,
        )
        self._service(target, "prometheus", [("http", PROMETHEUS_PORT)])

        grafana_config = self._config_map(
            target,
            "grafana",
            {
                "datasource.yml": self.datasource,
                "provider.yml": GRAFANA_DASHBOARD_PROVIDER,
                "living-codex.json": self.dashboard,
            },
        )

        def items(key: str, path: str) -> dict[str, Any]:
            return {"configMap": {"name": grafana_config, "items": [{"key": key, "path": path}]}}

        self._deployment(
            target,
            "grafana",
            images.GRAFANA,
            GRAFANA_PORT,
            472,
            {
                "env": [
                    {
                        "name": "GF_SECURITY_ADMIN_PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": target.secret_name, "key": "grafanaPassword"}},
                    },
                    {"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "false"},
                ],
                "resources": resources("100m", "128Mi", "500m", "256Mi"),
                "volumeMounts": [
                    {"name": "datasources", "mountPath": "/etc/grafana/provisioning/datasources"},
                    {"name": "providers", "mountPath": "/etc/grafana/provisioning/dashboards"},
                    {"name": "dashboards", "mountPath": "/var/lib/grafana/dashboards"},
                    {"name": "data", "mountPath": "/var/lib/grafana"},
                ],
            },
            [
                {**items("datasource.yml", "prometheus.yml"), "name": "datasources"},
                {**items("provider.yml", "living-codex.yml"), "name": "providers"},
                {**items("living-codex.json", "living-codex.json"), "name": "dashboards"},
                {"name": "data", "emptyDir": {}},
            ],
        )
        self._service(target, "grafana", [("http", GRAFANA_PORT)])

        self._deployment(
            target,
            "jaeger",
            images.JAEGER,
            JAEGER_UI_PORT,
            10001,
            {
                "env": [{"name": "COLLECTOR_OTLP_ENABLED", "value": "true"}],
                "ports": [
                    {"containerPort": JAEGER_UI_PORT, "name": "http"},
                    {"containerPort": OTLP_HTTP_PORT, "name": "otlp-http"},
                ],
                "resources": resources("100m", "256Mi", "500m", "512Mi"),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            },
            [{"name": "tmp", "emptyDir": {}}],
        )
        self._service(target, "jaeger", [("http", JAEGER_UI_PORT), ("otlp-http", OTLP_HTTP_PORT)])
