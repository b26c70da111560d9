"""cert-manager issuers, declared so TLS bootstraps on an empty cluster: an internal CA (self-signed root,
then a CA ClusterIssuer) for in-cluster TLS, and the public ACME issuer solving DNS-01, which needs
neither the gateway nor an open port 80. What cert-manager cannot get from the program (itself, the DNS
provider's API token) is named as a prerequisite."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.target import Target, child

CERT_MANAGER = "cert-manager.io/v1"
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}  # Pulumi waits until cert-manager says Ready


def cluster_issuer(parent: pulumi.Resource, name: str, spec: dict[str, Any], **extra: Any) -> Any:
    return k8s.apiextensions.CustomResource(
        name,
        api_version=CERT_MANAGER,
        kind="ClusterIssuer",
        metadata={"name": name, "annotations": WAIT_READY},
        spec=spec,
        opts=pulumi.ResourceOptions.merge(child(parent), pulumi.ResourceOptions(**extra)),
    )


class Issuers(pulumi.ComponentResource):
    self_signed: k8s.apiextensions.CustomResource
    ca_certificate: k8s.apiextensions.CustomResource
    internal: k8s.apiextensions.CustomResource
    public: k8s.apiextensions.CustomResource | None = None

    def __init__(self, name: str, target: Target, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("living-codex:index:Issuers", name, None, opts)
        spec = target.spec
        internal, cm_namespace = spec.internalIssuer, spec.certManagerNamespace
        target.prerequisites.append(
            f"cert-manager (CRDs and controller) installed in namespace {cm_namespace}: "
            "https://cert-manager.io/docs/installation/"
        )
        self.self_signed = cluster_issuer(self, f"{internal}-selfsigned", {"selfSigned": {}})
        self.ca_certificate = k8s.apiextensions.CustomResource(
            f"{internal}-root",
            api_version=CERT_MANAGER,
            kind="Certificate",
            # A ClusterIssuer's CA secret lives in cert-manager's own namespace.
            metadata={"name": f"{internal}-root", "namespace": cm_namespace, "annotations": WAIT_READY},
            spec={
                "isCA": True,
                "commonName": f"{internal} root",
                "secretName": f"{internal}-root",
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {"name": f"{internal}-selfsigned", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.self_signed]),
        )
        self.internal = cluster_issuer(
            self, internal, {"ca": {"secretName": f"{internal}-root"}}, depends_on=[self.ca_certificate]
        )
        if spec.acme:
            dns = spec.acme.dns01
            token_field = {"cloudflare": "apiTokenSecretRef", "digitalocean": "tokenSecretRef"}[dns.provider]
            solver = {dns.provider: {token_field: {"name": dns.secretName, "key": dns.secretKey}}}
            self.public = cluster_issuer(
                self,
                spec.certIssuer,
                {
                    "acme": {
                        "email": spec.acme.email,
                        "server": spec.acme.server,
                        "privateKeySecretRef": {"name": f"{spec.certIssuer}-account-key"},
                        "solvers": [{"dns01": solver}],
                    }
                },
            )
            target.prerequisites.append(
                f"Secret {cm_namespace}/{dns.secretName} (key {dns.secretKey}): the {dns.provider} API token "
                f"cert-manager answers DNS-01 for {spec.domain} with"
            )
        elif spec.tls and not spec.tlsSecretName:
            # Read, not declared: a real preview fails here, naming the issuer, when the cluster lacks it.
            k8s.apiextensions.CustomResource.get(
                "public-issuer", api_version=CERT_MANAGER, kind="ClusterIssuer", id=spec.certIssuer, opts=child(self)
            )
            target.prerequisites.append(f"ClusterIssuer {spec.certIssuer} (or set living-codex:acme to declare it)")
        self.register_outputs({"internal": internal})
