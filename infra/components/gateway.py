"""The Nginx gateway: the one nginx.conf template; TLS from cert-manager (or a given Secret) on Kubernetes,
from the stack's secrets tlsCertificate/tlsKey on Docker."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import catalogue
from infra.catalogue import GATEWAY_HTTP, GATEWAY_HTTPS
from infra.components.container import container
from infra.components.in_place import reloaded_file
from infra.components.issuers import WAIT_READY
from infra.components.target import (
    Target,
    checksum,
    child,
    cpu_count,
    labels,
    metadata,
)
from infra.components.workload import container as kubernetes_container
from infra.components.workload import disruption_budget, workload
from infra.reload_scripts import docker_nginx_reload, docker_nginx_restore, nginx_with_reload
from infra.render import Container, render_nginx
from infra.spec import NAMESPACE, EnvironmentSpec
from infra.weights import upstream_weights

HTTP, HTTPS = GATEWAY_HTTP, GATEWAY_HTTPS  # nginx's own ports; the Service or the host maps 80/443
TLS_DIR = "/etc/nginx/tls"
CONF_DIR = "/etc/nginx/living-codex"  # a directory mount (not subPath), so a changed ConfigMap reaches it
NGINX_UID = "101"  # the nginx-unprivileged image's user: it alone may read the uploaded key
DOCKER_CONF = "/etc/nginx/nginx.conf"
DOCKER_TLS_KEYS = ("tlsCertificate", "tlsKey")


class MissingTlsCertificate(pulumi.RunError):
    """A Docker stack with tls on but no certificate or key among its secrets."""


def docker_tls(spec: EnvironmentSpec) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """The certificate (PEM, chain included) and key of a Docker stack's gateway, from its secrets.

    A Docker host has no cert-manager, and an ACME client beside nginx would be one more daemon holding
    DNS credentials; a certificate given as two secrets (set with --secret or by the stack's ESC
    environment) works with any CA. Renewing it is setting them again and running `pulumi up`.
    """
    config = pulumi.Config(NAMESPACE)
    missing = [key for key in DOCKER_TLS_KEYS if config.get_secret(key) is None]
    if missing:
        raise MissingTlsCertificate(
            f"stack {spec.stack}: living-codex:tls is on, and a Docker gateway's certificate comes from the "
            f"stack's secrets, but {', '.join(f'{NAMESPACE}:{key}' for key in missing)} is not set. Set both "
            f"(PEM files): pulumi config set --secret --stack {spec.stack} {NAMESPACE}:tlsCertificate < fullchain.pem; "
            f"pulumi config set --secret --stack {spec.stack} {NAMESPACE}:tlsKey < privkey.pem "
            f"(or add them as secrets to the stack's ESC environment)"
        )
    return config.require_secret("tlsCertificate"), config.require_secret("tlsKey")


def _load_balancer_address(status: Any) -> str:
    """The first ingress IP (or host name, e.g. an AWS ELB) of a LoadBalancer Service's status; "" until set."""
    balancer = getattr(status, "load_balancer", None)
    ingress = list(getattr(balancer, "ingress", None) or [])
    if not ingress:
        return ""
    return str(getattr(ingress[0], "ip", None) or getattr(ingress[0], "hostname", None) or "")


def canary_upstreams(target: Target, upstreams: list[str], weight: int) -> tuple[list[str], dict[str, int]]:
    """The serving replicas and the canary with the step's weights (infra/weights.py), as the local gateway
    routes a step; at weight 0 the canary is not in the upstream."""
    if not weight or target.canary_host is None:
        return upstreams, {}
    weights = upstream_weights(weight, len(upstreams))
    canary = f"{target.canary_host}:{target.spec.ports.app}"
    return [*upstreams, canary], {**dict.fromkeys(upstreams, weights.baseline), canary: weights.canary}


class Gateway(pulumi.ComponentResource):
    nginx_conf: str
    container: docker.Container | None = None
    config_map: k8s.core.v1.ConfigMap | None = None
    certificate: k8s.apiextensions.CustomResource | None = None
    deployment: k8s.apps.v1.Deployment | None = None
    service: k8s.core.v1.Service | None = None
    pdb: k8s.policy.v1.PodDisruptionBudget | None = None
    address: pulumi.Output[str] | None = None
    reload: command.local.Command | None = None  # Docker: a rollout step's weights, reloaded in place

    def __init__(
        self,
        name: str,
        target: Target,
        upstreams: list[str],
        opts: pulumi.ResourceOptions | None = None,
        canary: docker.Container | None = None,
    ) -> None:
        super().__init__("living-codex:index:Gateway", name, None, opts)
        spec = target.spec
        self.entry = catalogue.entry(spec, "gateway")
        self.tls_secret = spec.tlsSecretName or f"{target.host('gateway')}-tls"
        # What the container is created with: the serving replicas alone, so a canary step never changes it.
        self.uploaded_conf = self._render(target, upstreams, {})
        self.nginx_conf = self.uploaded_conf  # what nginx serves
        if spec.canary and target.canary_host:
            routed, weights = canary_upstreams(target, upstreams, spec.canary.weight)
            self.nginx_conf = self._render(target, routed, weights)
        if target.kubernetes:
            self._kubernetes(target)
        else:
            self._docker(target)
            if spec.canary and canary is not None:
                self._reload_weights(target, canary)
        self.register_outputs({})

    def _render(self, target: Target, upstreams: list[str], weights: dict[str, int]) -> str:
        spec = target.spec
        return render_nginx(
            spec,
            upstreams,
            weights=weights,
            http_port=HTTP,
            https_port=HTTPS,
            tls_cert=f"{TLS_DIR}/tls.crt" if spec.tls else "",
            tls_key=f"{TLS_DIR}/tls.key" if spec.tls else "",
            runtime_dir="/tmp",
            container=Container(
                resolver=target.resolver,
                worker_processes=cpu_count(spec.gateway.resources.cpuLimit),
                real_ip_from=spec.gateway.trustedProxies,
            ),
        )

    def _docker(self, target: Target) -> None:
        spec = target.spec
        ports = [{"internal": HTTP, "external": spec.ports.http}]
        uploads: list[dict[str, object]] = [{"file": DOCKER_CONF, "content": self.uploaded_conf}]
        if spec.tls:
            # Secrets stay secrets in the state; a new certificate is new uploads, so `pulumi up` replaces
            # the container (no reload loop to watch files, as on Kubernetes).
            certificate, key = docker_tls(spec)
            ports.append({"internal": HTTPS, "external": spec.ports.https})
            uploads += [
                {"file": f"{TLS_DIR}/tls.crt", "content": certificate, "permissions": "0444"},
                {"file": f"{TLS_DIR}/tls.key", "content": key, "owner": NGINX_UID, "permissions": "0400"},
            ]
        self.container = container(
            self,
            target,
            self.entry,
            health=["CMD-SHELL", f"wget -qO- http://127.0.0.1:{HTTP}/health/live"],
            ports=ports,
            uploads=uploads,
        )

    def _reload_weights(self, target: Target, canary: docker.Container) -> None:
        """A step's weights reach the running nginx by a graceful reload, never a new gateway container
        (infra/components/in_place.py): new workers take new connections, the old ones finish theirs."""
        assert self.container is not None
        host = target.host("gateway")
        scripts = docker_nginx_reload(host, DOCKER_CONF), docker_nginx_restore(host, DOCKER_CONF)
        self.reload = reloaded_file(self, target, "gateway-weights", self.container, self.nginx_conf, scripts, [canary])

    def _kubernetes(self, target: Target) -> None:
        spec, component = target.spec, "gateway"
        self.config_map = k8s.core.v1.ConfigMap(
            "gateway-config",
            metadata=metadata(target, component, f"{target.host('gateway')}-config"),
            data={"nginx.conf": self.nginx_conf},
            opts=child(self),
        )
        if spec.tls and not spec.tlsSecretName:
            self.certificate = k8s.apiextensions.CustomResource(
                "gateway-tls",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={**metadata(target, component, self.tls_secret), "annotations": WAIT_READY},
                spec={
                    "secretName": self.tls_secret,
                    "dnsNames": [spec.domain],
                    "issuerRef": {"name": spec.certIssuer, "kind": "ClusterIssuer"},
                },
                opts=child(self),
            )
        mounts: list[dict[str, object]] = [
            {"name": "config", "mountPath": CONF_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        volumes: list[dict[str, object]] = [
            {"name": "config", "configMap": {"name": f"{target.host('gateway')}-config"}},
            {"name": "tmp", "emptyDir": {}},
        ]
        if spec.tls:
            mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
            volumes.append({"name": "tls", "secret": {"secretName": self.tls_secret}})
        probe = {"tcpSocket": {"port": HTTP}, "periodSeconds": 10}
        watched = f"{CONF_DIR}/nginx.conf" + (f" {TLS_DIR}/tls.crt {TLS_DIR}/tls.key" if spec.tls else "")
        self.deployment = workload(
            self,
            target,
            self.entry,
            [
                kubernetes_container(
                    target,
                    self.entry,
                    name="nginx",
                    # nginx reloads in place when cert-manager renews the certificate (or the config
                    # changes): infra/reload_scripts.py.
                    command=["sh", "-c", nginx_with_reload(f"{CONF_DIR}/nginx.conf", watched)],
                    readinessProbe=probe,
                    livenessProbe=probe,
                    # The LoadBalancer and kube-proxy drop this pod before nginx is stopped.
                    lifecycle={"preStop": {"sleep": {"seconds": spec.shutdown.drainSeconds}}},
                    volumeMounts=mounts,
                )
            ],
            rollout=checksum(self.nginx_conf),
            volumes=volumes,
            spec={"replicas": self.entry.replicas},
            # The pod mounts the certificate's Secret: start it once cert-manager has issued it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[c for c in [self.certificate] if c]),
        )
        ports = [{"name": "http", "port": spec.ports.http, "targetPort": "http"}]
        if spec.tls:
            ports.append({"name": "https", "port": spec.ports.https, "targetPort": "https"})
        self.service = k8s.core.v1.Service(
            "gateway",
            metadata=metadata(target, component),
            # Local: clients keep their own address (rate limits per client) and no node forwards traffic.
            spec={
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "selector": labels(component),
                "ports": ports,
            },
            opts=child(self),
        )
        # What DNS for the domain points at: the LoadBalancer's address once the cloud assigned it.
        self.address = self.service.status.apply(_load_balancer_address)
        self.pdb = disruption_budget(self, target, self.entry)
