"""Prometheus (scrape config, the generated alert rules, alerts sent to Alertmanager), Alertmanager (the
spec's receivers), Grafana (provisioned), Jaeger (bounded memory). Prometheus, Alertmanager and Grafana
keep their data on volumes that outlive the containers and pods."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import catalogue, images
from infra.alerts import render_alert_rules
from infra.catalogue import KSM_PORT, PROMETHEUS_PORT, scrape_jobs
from infra.components.container import container, data_volume
from infra.components.in_place import reloaded_file
from infra.components.target import Target, checksum, child, metadata, pvc, restricted_container
from infra.components.workload import container as kubernetes_container
from infra.components.workload import limits, workload
from infra.components.workload import service as service_of
from infra.dashboard import GRAFANA_DASHBOARD_PROVIDER, GRAFANA_DATASOURCE, render_dashboard
from infra.grafana_admin import PASSWORD_FILE, RESET_ADMIN_PASSWORD
from infra.reload_scripts import docker_prometheus_reload, docker_prometheus_restore
from infra.render import (
    ALERTMANAGER_PORT,
    ALERTMANAGER_SECRETS_DIR,
    alertmanager_secret_keys,
    render_alertmanager,
    render_prometheus,
)
from infra.spec import NAMESPACE

CERT_MANAGER_METRICS_PORT = 9402
KSM_RESOURCES = "cronjobs,jobs,pods,statefulsets"  # what the backup and datastore alerts read
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"


def _addresses(target: Target, entry: catalogue.Entry) -> list[str]:
    """Where Prometheus scrapes a service: its Service, or each of its containers."""
    hosts = [entry.host] if target.kubernetes else catalogue.docker_hosts(entry)
    return [f"{host}:{entry.port}" for host in hosts]


class Observability(pulumi.ComponentResource):
    prometheus_config: str
    alert_rules: str
    alertmanager_config: str
    containers: dict[str, docker.Container]
    volumes: dict[str, docker.Volume]
    deployments: dict[str, k8s.apps.v1.Deployment]
    services: dict[str, k8s.core.v1.Service]
    config_maps: dict[str, k8s.core.v1.ConfigMap]
    claims: dict[str, k8s.core.v1.PersistentVolumeClaim]
    canary_scrape: command.local.Command | None = None  # Docker: a rollout step's canary, scraped too

    def __init__(
        self, name: str, target: Target, app_targets: list[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("living-codex:index:Observability", name, None, opts)
        spec = target.spec
        self.containers, self.volumes, self.deployments, self.services = {}, {}, {}, {}
        self.config_maps, self.claims = {}, {}
        self.otlp_endpoint = catalogue.OTLP_ENDPOINT
        self.alertmanager_address = f"{target.host('alertmanager')}:{ALERTMANAGER_PORT}"
        self.app_targets = app_targets
        self.prometheus_config = self._render_prometheus(target, app_targets)
        self.alert_rules = render_alert_rules(spec, cluster=target.kubernetes)
        self.alertmanager_config = render_alertmanager(spec)
        self.alertmanager_secrets = {
            key: pulumi.Config(NAMESPACE).require_secret(key) for key in alertmanager_secret_keys(spec)
        }
        self.datasource = GRAFANA_DATASOURCE.format(url=f"http://{target.host('prometheus')}:{PROMETHEUS_PORT}")
        self.dashboard = render_dashboard(spec)
        self.jaeger_env = dict(catalogue.entry(spec, "jaeger").env)
        self.grafana_env = dict(catalogue.entry(spec, "grafana").env)
        if target.kubernetes:
            self._kubernetes(target)
        else:
            self._docker(target)
        self.register_outputs({"otlpEndpoint": self.otlp_endpoint})

    def _render_prometheus(self, target: Target, app_targets: list[str]) -> str:
        return render_prometheus(
            target.spec,
            app_targets,
            rules_path="/etc/prometheus/alert-rules.yml",
            kubernetes_sd=target.kubernetes,
            alertmanagers=[self.alertmanager_address],
            extra_jobs=self._cluster_jobs(target),
        )

    def scrape_canary(self, target: Target, canary: docker.Container) -> None:
        """A Docker rollout step's canary joins the scraped replicas by a reload of the running Prometheus
        (infra/components/in_place.py): its container, data and alert state stay as they are."""
        assert target.canary_host is not None
        scraped = self._render_prometheus(target, [*self.app_targets, f"{target.canary_host}:{target.spec.ports.app}"])
        host = target.host("prometheus")
        scripts = docker_prometheus_reload(host, PROMETHEUS_CONFIG), docker_prometheus_restore(host, PROMETHEUS_CONFIG)
        prometheus = self.containers["prometheus"]
        self.canary_scrape = reloaded_file(self, target, "prometheus-canary", prometheus, scraped, scripts, [canary])

    @staticmethod
    def _cluster_jobs(target: Target) -> list[tuple[str, str | list[str]]]:
        """The catalogue's scraped services (kube-state-metrics: backups, datastore pods) and, with TLS,
        cert-manager (certificate expiry)."""
        spec = target.spec
        jobs: list[tuple[str, str | list[str]]] = [
            *scrape_jobs(catalogue.running(spec), lambda e: _addresses(target, e))
        ]
        if target.kubernetes and (spec.tls or spec.redis.tls):
            jobs.append(("cert-manager", f"cert-manager.{spec.certManagerNamespace}.svc:{CERT_MANAGER_METRICS_PORT}"))
            target.prerequisites.append(
                f"cert-manager's metrics on Service {spec.certManagerNamespace}/cert-manager port "
                f"{CERT_MANAGER_METRICS_PORT} (the Helm chart's default), reachable from this namespace: certificate "
                "expiry alerts read them"
            )
        return jobs

    # -- staging --------------------------------------------------------------------------
    def _container(self, target: Target, service: str, health: list[str] | None = None, **extra: Any) -> None:
        entry = catalogue.entry(target.spec, service)
        volume = None
        if entry.data_path:
            volume = self.volumes[service] = data_volume(self, target, entry)
        self.containers[service] = container(self, target, entry, health=health, volume=volume, **extra)

    def _docker(self, target: Target) -> None:
        o = target.spec.observability
        self._container(
            target,
            "prometheus",
            command=[
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                f"--storage.tsdb.retention.time={o.prometheusRetention}",
            ],
            uploads=[
                {"file": "/etc/prometheus/prometheus.yml", "content": self.prometheus_config},
                {"file": "/etc/prometheus/alert-rules.yml", "content": self.alert_rules},
            ],
        )
        self._container(
            target,
            "alertmanager",
            command=[
                "--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager",
                "--cluster.listen-address=",  # one instance: no gossip peers
            ],
            uploads=[{"file": "/etc/alertmanager/alertmanager.yml", "content": self.alertmanager_config}]
            + [
                {"file": f"{ALERTMANAGER_SECRETS_DIR}/{key}", "content": value}
                for key, value in self.alertmanager_secrets.items()
            ],
        )
        self._container(
            target,
            "grafana",
            envs=[f"{k}={v}" for k, v in self.grafana_env.items()]
            + [pulumi.Output.concat("GF_SECURITY_ADMIN_PASSWORD=", target.secret_data["grafanaPassword"])],
            # A rotated password reaches the existing database: reset it, then the image's own start script.
            entrypoints=["sh", "-c", f"{RESET_ADMIN_PASSWORD}; exec /run.sh"],
            uploads=self._grafana_files(),
        )
        self._container(target, "jaeger", ["CMD", "wget", "-qO-", "http://127.0.0.1:14269/"])  # its admin port

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
        extra: dict[str, Any],
        volumes: list[dict[str, Any]],
        rollout: pulumi.Input[str],
        service_account: str | None = None,
        init: dict[str, Any] | None = None,
    ) -> None:
        """One replica; with a data claim, Recreate (a ReadWriteOnce claim cannot attach to two pods)."""
        entry = catalogue.entry(target.spec, service)
        mounts = list(extra.pop("volumeMounts", []))
        strategy = {"type": "RollingUpdate"}
        if entry.data_path and entry.storage:
            self.claims[service] = pvc(self, target, service, entry.storage, f"{service}-data")
            volumes = [*volumes, {"name": "data", "persistentVolumeClaim": {"claimName": f"{entry.host}-data"}}]
            mounts.append({"name": "data", "mountPath": entry.data_path})
            strategy = {"type": "Recreate"}
        pod: dict[str, Any] = {"automountServiceAccountToken": service_account is not None}
        if service_account:
            pod["serviceAccountName"] = service_account
        if init:  # runs with the same mounts (the data claim included) before the server starts
            security = {"securityContext": restricted_container(), "resources": limits(entry)}
            pod["initContainers"] = [{**security, "volumeMounts": mounts, **init}]
        self.deployments[service] = workload(
            self,
            target,
            entry,
            [kubernetes_container(target, entry, volumeMounts=mounts, **extra)],
            rollout=rollout,
            volumes=volumes,
            pod=pod,
            spec={"replicas": 1, "strategy": strategy},
        )
        self.services[service] = service_of(self, target, entry)

    def _config_map(self, target: Target, service: str, data: dict[str, str]) -> str:
        name = f"{target.host(service)}-config"
        self.config_maps[service] = k8s.core.v1.ConfigMap(
            f"{service}-config", metadata=metadata(target, service, name), data=data, opts=child(self)
        )
        return name

    def _kubernetes(self, target: Target) -> None:
        self._prometheus(target)
        self._alertmanager(target)
        self._grafana(target)
        self._jaeger(target)
        self._kube_state_metrics(target)

    def _prometheus(self, target: Target) -> None:
        o = target.spec.observability
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
        data = {"prometheus.yml": self.prometheus_config, "alert-rules.yml": self.alert_rules}
        prom_config = self._config_map(target, "prometheus", data)
        self._deployment(
            target,
            "prometheus",
            {
                "args": [
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    f"--storage.tsdb.retention.time={o.prometheusRetention}",
                ],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"}],
            },
            [{"name": "config", "configMap": {"name": prom_config}}],
            checksum(*data.values()),
            service_account=account,
        )

    def _alertmanager(self, target: Target) -> None:
        config = self._config_map(target, "alertmanager", {"alertmanager.yml": self.alertmanager_config})
        volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": config}}]
        mounts: list[dict[str, Any]] = [{"name": "config", "mountPath": "/etc/alertmanager/config"}]
        if self.alertmanager_secrets:  # receiver credentials, read by Alertmanager as files
            secret = k8s.core.v1.Secret(
                "alertmanager-secrets",
                metadata=metadata(target, "alertmanager", f"{target.host('alertmanager')}-secrets"),
                type="Opaque",
                string_data=self.alertmanager_secrets,
                opts=child(self),
            )
            volumes.append({"name": "secrets", "secret": {"secretName": secret.metadata["name"]}})
            mounts.append({"name": "secrets", "mountPath": ALERTMANAGER_SECRETS_DIR, "readOnly": True})
        self._deployment(
            target,
            "alertmanager",
            {
                "args": [
                    "--config.file=/etc/alertmanager/config/alertmanager.yml",
                    "--storage.path=/alertmanager",
                    "--cluster.listen-address=",  # one replica: no gossip peers
                ],
                "volumeMounts": mounts,
            },
            volumes,
            checksum(self.alertmanager_config, *self.alertmanager_secrets.values()),
        )

    def _grafana(self, target: Target) -> None:
        data = {
            "datasource.yml": self.datasource,
            "provider.yml": GRAFANA_DASHBOARD_PROVIDER,
            "living-codex.json": self.dashboard,
        }
        grafana_config = self._config_map(target, "grafana", data)

        def items(key: str, path: str) -> dict[str, Any]:
            return {"configMap": {"name": grafana_config, "items": [{"key": key, "path": path}]}}

        self._deployment(
            target,
            "grafana",
            {
                "env": [
                    {"name": "GF_SECURITY_ADMIN_PASSWORD__FILE", "value": PASSWORD_FILE},
                    *({"name": k, "value": v} for k, v in self.grafana_env.items()),
                ],
                "volumeMounts": [
                    {"name": "datasources", "mountPath": "/etc/grafana/provisioning/datasources"},
                    {"name": "providers", "mountPath": "/etc/grafana/provisioning/dashboards"},
                    {"name": "dashboards", "mountPath": "/var/lib/grafana/dashboards"},
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "logs", "mountPath": "/var/log/grafana"},
                    {"name": "admin-password", "mountPath": PASSWORD_FILE.rsplit("/", 1)[0], "readOnly": True},
                ],
            },
            [
                {**items("datasource.yml", "prometheus.yml"), "name": "datasources"},
                {**items("provider.yml", "living-codex.yml"), "name": "providers"},
                {**items("living-codex.json", "living-codex.json"), "name": "dashboards"},
                {"name": "tmp", "emptyDir": {}},
                {"name": "logs", "emptyDir": {}},
                {
                    "name": "admin-password",
                    "secret": {
                        "secretName": target.secret_name,
                        "items": [{"key": "grafanaPassword", "path": PASSWORD_FILE.rsplit("/", 1)[1]}],
                    },
                },
            ],
            # A rotated password rolls the pod; the init container sets it on the existing database.
            checksum(*data.values(), target.secret_checksum("grafanaPassword")),
            init={
                "name": "admin-password",
                "image": target.pinned(images.GRAFANA),
                "command": ["sh", "-c", RESET_ADMIN_PASSWORD],
                "env": [{"name": "GF_SECURITY_ADMIN_PASSWORD__FILE", "value": PASSWORD_FILE}],
            },
        )

    def _jaeger(self, target: Target) -> None:
        self._deployment(
            target,
            "jaeger",
            {
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            },
            [{"name": "tmp", "emptyDir": {}}],
            checksum(*self.jaeger_env.values()),
        )

    def _kube_state_metrics(self, target: Target) -> None:
        """kube-state-metrics for this namespace only, with a namespaced Role (no cluster-wide read)."""
        account = target.host("kube-state-metrics")
        k8s.core.v1.ServiceAccount(
            "kube-state-metrics", metadata=metadata(target, "kube-state-metrics"), opts=child(self)
        )
        k8s.rbac.v1.Role(
            "kube-state-metrics",
            metadata=metadata(target, "kube-state-metrics"),
            rules=[
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
                {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": ["list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["list", "watch"]},
            ],
            opts=child(self),
        )
        k8s.rbac.v1.RoleBinding(
            "kube-state-metrics",
            metadata=metadata(target, "kube-state-metrics"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            subjects=[{"kind": "ServiceAccount", "name": account, "namespace": target.namespace}],
            opts=child(self),
        )
        args = [f"--namespaces={target.namespace}", f"--resources={KSM_RESOURCES}", f"--port={KSM_PORT}"]
        self._deployment(
            target,
            "kube-state-metrics",
            {
                "args": args,
                # /healthz on the metrics port: served by every kube-state-metrics v2 release.
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": KSM_PORT}, "periodSeconds": 10},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": KSM_PORT}, "periodSeconds": 20},
            },
            [],
            checksum(*args),
            service_account=account,
        )
