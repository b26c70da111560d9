"""What every other component stands on: the Docker network, or the namespace, the Secret and the
NetworkPolicies (default deny, then only the paths the catalogue's peers name: infra/catalogue.py)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.catalogue import egress_paths, ingress_paths
from infra.components.target import PREFIX, Target, child, labels, stateful
from infra.secrets import SOURCES_ANNOTATION
from infra.spec import EnvironmentSpec


def dns_egress(spec: EnvironmentSpec) -> dict[str, Any]:
    """Port 53 to the cluster DNS only: kube-dns pods in kube-system, and NodeLocal DNSCache's address (its
    pods run on the host network, so only an ipBlock reaches them)."""
    peers: list[dict[str, Any]] = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    if spec.nodeLocalDns:
        peers.append({"ipBlock": {"cidr": spec.nodeLocalDns}})
    return {"to": peers, "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


class Foundation(pulumi.ComponentResource):
    network: docker.Network | None = None
    namespace: k8s.core.v1.Namespace | None = None
    secret: k8s.core.v1.Secret | None = None
    network_policies: list[k8s.networking.v1.NetworkPolicy]

    def __init__(
        self,
        name: str,
        target: Target,
        secret_data: dict[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("living-codex:index:Foundation", name, None, opts)
        self.network_policies = []
        if target.kubernetes:
            self._kubernetes(target, secret_data)
        else:
            self.network = docker.Network(
                "network",
                name=f"{PREFIX}-{target.spec.stack}",
                # A known subnet: the app trusts the gateway's forwarded addresses from it (TRUSTED_PROXIES).
                ipam_configs=[{"subnet": target.spec.dockerSubnet}],
                opts=child(self),
            )
            target.network = self.network
        self.register_outputs({})

    def _policy(self, target: Target, name: str, spec: dict[str, Any]) -> None:
        self.network_policies.append(
            k8s.networking.v1.NetworkPolicy(
                name,
                metadata={
                    "name": f"{PREFIX}-{name}",
                    "namespace": target.namespace,
                    "labels": {"app.kubernetes.io/part-of": PREFIX},
                },
                spec=spec,
                opts=child(self),
            )
        )

    def _kubernetes(self, target: Target, secret_data: dict[str, pulumi.Output[str]]) -> None:
        self.namespace = k8s.core.v1.Namespace(
            "namespace",
            metadata={
                "name": target.namespace,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "app.kubernetes.io/part-of": PREFIX,
                },
            },
            # Deleting a namespace deletes every claim in it: a renamed namespace leaves the old one.
            opts=stateful(self, target),
        )
        after_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        self.secret = k8s.core.v1.Secret(
            "secrets",
            metadata={
                "name": target.secret_name,
                "namespace": target.namespace,
                "annotations": {SOURCES_ANNOTATION: target.secret_sources},
            },
            type="Opaque",
            string_data=secret_data,
            opts=after_namespace,
        )
        self._policy(target, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        self._policy(
            target, "allow-dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns_egress(target.spec)]}
        )
        self._policy(
            target,
            "gateway-from-anywhere",
            {
                "podSelector": {"matchLabels": labels("gateway")},
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8443}]}],
            },
        )
        for name, selected, ports, peers in ingress_paths(target.spec):
            self._policy(
                target,
                name,
                {
                    "podSelector": {"matchLabels": labels(selected)},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"podSelector": {"matchLabels": labels(p)}} for p in peers],
                            "ports": [{"protocol": "TCP", "port": port} for port in ports],
                        }
                    ],
                },
            )
        for name, selected, ports, peers in egress_paths(target.spec):
            self._policy(
                target,
                name,
                {
                    "podSelector": {"matchLabels": labels(selected)},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [{"podSelector": {"matchLabels": labels(p)}} for p in peers],
                            "ports": [{"protocol": "TCP", "port": port} for port in ports],
                        }
                    ],
                },
            )
        self._policy(
            target,
            "prometheus-to-kubernetes-api",
            {
                "podSelector": {"matchLabels": labels("prometheus")},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}],
            },
        )
        self._policy(
            target,
            "kube-state-metrics-to-kubernetes-api",
            {
                "podSelector": {"matchLabels": labels("kube-state-metrics")},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}],
            },
        )
        self._policy(
            target,
            "prometheus-to-cert-manager",
            {
                "podSelector": {"matchLabels": labels("prometheus")},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": target.spec.certManagerNamespace}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": 9402}],
                    }
                ],
            },
        )
        if target.spec.postgres.backup.offsite:
            self._policy(
                target,
                "backup-to-object-storage",
                {
                    "podSelector": {"matchLabels": labels("postgres-backup")},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": [{"protocol": "TCP", "port": 443}]}],
                },
            )
        self._policy(
            target,
            "alertmanager-to-receivers",
            {
                "podSelector": {"matchLabels": labels("alertmanager")},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 587}]}],
            },
        )
