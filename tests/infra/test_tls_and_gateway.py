"""TLS bootstraps from the program (internal CA, ACME DNS-01 from the spec, the rest
named as prerequisites; on Docker, the certificate and key the stack's secrets give); the public gateway keeps client addresses, refuses /metrics, re-resolves its
upstreams, logs to stdout/stderr and runs one worker per CPU of its limit."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.components.gateway import MissingTlsCertificate
from infra.mock_runtime import Declaration
from infra.render import render_nginx
from infra.spec import load_spec
from policies import security
from tests.infra.conftest import Variant, container, deployment
from tests.policies.conftest import check

ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"


def _issuers(declaration: Declaration) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in declaration.of_type(ISSUER)}


def _certificates(declaration: Declaration) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in declaration.of_type(CERTIFICATE)}


def test_the_program_declares_the_internal_ca_and_the_dns01_issuer(production: Declaration) -> None:
    issuers, certificates = _issuers(production), _certificates(production)
    assert issuers["living-codex-internal-ca-selfsigned"] == {"selfSigned": {}}
    root = certificates["living-codex-internal-ca-root"]
    assert root["isCA"] and root["issuerRef"]["name"] == "living-codex-internal-ca-selfsigned"
    assert issuers["living-codex-internal-ca"] == {"ca": {"secretName": root["secretName"]}}
    acme = issuers["letsencrypt"]["acme"]
    assert acme["solvers"] == [
        {"dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "cloudflare-api-token", "key": "api-token"}}}}
    ]
    assert certificates["living-codex-redis-tls"]["issuerRef"]["name"] == "living-codex-internal-ca"
    assert certificates["living-codex-gateway-tls"]["issuerRef"]["name"] == "letsencrypt"
    prerequisites = " | ".join(production.environment.prerequisites)  # type: ignore[union-attr]
    assert "cert-manager" in prerequisites and "cert-manager/cloudflare-api-token" in prerequisites


def test_workloads_start_once_their_certificate_is_issued(production: Declaration) -> None:
    for workload, certificate in (("Deployment", "gateway-tls"), ("StatefulSet", "redis-tls")):
        cert = production.one(CERTIFICATE, certificate)
        assert cert.inputs["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
        name = "gateway" if workload == "Deployment" else "redis"
        assert cert.urn in production.one(f"kubernetes:apps/v1:{workload}", name).dependencies


def test_without_acme_the_public_issuer_is_a_named_prerequisite(variant: Variant) -> None:
    declaration = variant("production", ("  living-codex:acme:\n", "  unrelated:acme:\n"))
    assert "letsencrypt" not in _issuers(declaration)
    assert any("ClusterIssuer letsencrypt" in p for p in declaration.environment.prerequisites)  # type: ignore[union-attr]


def test_the_internal_ca_may_serve_the_gateway_too(variant: Variant) -> None:
    """A cluster without public DNS (kind): the gateway's certificate from the program's own CA."""
    declaration = variant(
        "production",
        ("  living-codex:acme:\n", "  unrelated:acme:\n"),
        ("living-codex:certIssuer: letsencrypt", "living-codex:certIssuer: living-codex-internal-ca"),
    )
    assert _certificates(declaration)["living-codex-gateway-tls"]["issuerRef"]["name"] == "living-codex-internal-ca"
    assert not any("ClusterIssuer" in p for p in declaration.environment.prerequisites)  # type: ignore[union-attr]


def test_a_placeholder_domain_is_refused() -> None:
    for name, refused in (("codex.example.com", True), ("codex.test", True), ("codex.living-codex.org", False)):
        messages = check(security.real_domain, CERTIFICATE, {"spec": {"dnsNames": [name]}})
        assert bool(messages) is refused, name


def _gateway_conf(declaration: Declaration) -> str:
    if declaration.spec.platform == "kubernetes":
        return str(declaration.one(CONFIGMAP, "gateway-config").inputs["data"]["nginx.conf"])
    return str(container(declaration, "gateway")["uploads"][0]["content"])


def test_the_load_balancer_keeps_client_addresses(production: Declaration) -> None:
    service = production.one("kubernetes:core/v1:Service", "gateway").inputs["spec"]
    assert service["type"] == "LoadBalancer" and service["externalTrafficPolicy"] == "Local"


def test_the_public_gateway_refuses_metrics(staging: Declaration, production: Declaration) -> None:
    for declaration in (staging, production):
        conf = _gateway_conf(declaration)
        block = re.search(r"location /metrics \{(.*?)\n\s*\}", conf, re.S)
        assert block and "deny all;" in block.group(1) and "proxy_pass" not in block.group(1)
        assert check(security.metrics_not_public, CONFIGMAP, {"data": {"nginx.conf": conf}}) == []
    local = "location /metrics {\n allow 127.0.0.1;\n deny all;\n proxy_pass http://living_codex;\n }"
    assert check(security.metrics_not_public, CONFIGMAP, {"data": {"nginx.conf": local}})


def test_trusted_proxies_give_nginx_the_real_client_address(variant: Variant) -> None:
    declaration = variant("production", append="  living-codex:gateway:\n    trustedProxies: [10.0.0.0/8]\n")
    conf = _gateway_conf(declaration)
    assert "set_real_ip_from 10.0.0.0/8;" in conf and "real_ip_header X-Forwarded-For;" in conf


def test_every_gateway_forwards_the_address_it_saw_never_the_clients_header(
    staging: Declaration, production: Declaration, variant: Variant
) -> None:
    behind_a_balancer = variant("production", append="  living-codex:gateway:\n    trustedProxies: [10.0.0.0/8]\n")
    # The local environment renders staging's spec without TLS (codexops/localenv.py nginx_conf).
    plain = load_spec("staging").model_copy(update={"tls": False})
    local = render_nginx(plain, ["127.0.0.1:5101"], runtime_dir="/tmp/x", listen_host="127.0.0.1:")
    for conf in (_gateway_conf(staging), _gateway_conf(production), _gateway_conf(behind_a_balancer), local):
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
        assert "$proxy_add_x_forwarded_for" not in conf  # it appends whatever the client sent


def test_nginx_re_resolves_upstreams_and_logs_to_stdio(staging: Declaration, production: Declaration) -> None:
    for declaration, resolver, upstream in (
        (staging, "127.0.0.11", "living-codex-app-1:5002"),
        (production, "kube-dns.kube-system.svc.cluster.local", "living-codex-app.living-codex.svc.cluster.local:5002"),
    ):
        conf = _gateway_conf(declaration)
        assert f"resolver {resolver} valid=10s" in conf
        assert re.search(rf"server {re.escape(upstream)} .*resolve;", conf), conf
        assert "zone living_codex" in conf
        assert "error_log /dev/stderr" in conf and "access_log /dev/stdout;" in conf
        assert "/tmp/error.log" not in conf and "/tmp/access.log" not in conf


def test_workers_follow_the_container_cpu_limit(production: Declaration, variant: Variant) -> None:
    assert "worker_processes 1;" in _gateway_conf(production)  # the gateway's limit: 500m
    two = variant("production", append='  living-codex:gateway:\n    resources: {cpuLimit: "2"}\n')
    assert "worker_processes 2;" in _gateway_conf(two)
    limits = deployment(two, "gateway")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["cpu"] == "2"


def test_the_gateway_pauses_before_it_stops(production: Declaration) -> None:
    # Endpoints and the LoadBalancer drop a terminating pod only after a moment: nginx keeps serving meanwhile.
    (nginx,) = deployment(production, "gateway")["spec"]["template"]["spec"]["containers"]
    assert nginx["lifecycle"] == {"preStop": {"sleep": {"seconds": production.spec.shutdown.drainSeconds}}}


# -- issue 20, item 10: staging over TLS --------------------------------------------------------------
STAND_INS = ("tls-certificate-from-the-esc-environment", "tls-key-from-the-esc-environment")


def test_the_docker_gateway_serves_https_from_the_uploaded_certificate(staging: Declaration) -> None:
    gateway = container(staging, "gateway")
    assert {"internal": 8443, "external": 443} in gateway["ports"]
    uploads = {u["file"]: u for u in gateway["uploads"]}
    assert uploads["/etc/nginx/tls/tls.crt"]["content"] == STAND_INS[0]
    key = uploads["/etc/nginx/tls/tls.key"]
    assert key["content"] == STAND_INS[1] and key["owner"] == "101" and key["permissions"] == "0400"
    conf = uploads["/etc/nginx/nginx.conf"]["content"]
    assert "ssl_certificate /etc/nginx/tls/tls.crt;" in conf and "ssl_certificate_key /etc/nginx/tls/tls.key;" in conf
    assert "listen 8443 ssl;" in conf and "return 301 https://$host$request_uri;" in conf
    assert 'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;' in conf
    assert check(security.gateway_https, CONFIGMAP, {"data": {"nginx.conf": conf}}) == []


def test_the_certificate_and_key_are_secrets_and_nowhere_else(staging: Declaration) -> None:
    gateway = staging.one("docker:index/container:Container", "gateway")
    assert "uploads" in gateway.secrets  # encrypted in the state, masked in previews
    for resource in staging.resources:
        inputs = dict(resource.inputs)
        if resource is gateway:
            inputs["uploads"] = [u for u in inputs["uploads"] if not u["file"].startswith("/etc/nginx/tls/")]
        assert not any(value in repr(inputs) for value in STAND_INS), resource.name


def test_a_docker_tls_stack_without_its_certificate_is_refused(variant: Variant) -> None:
    unsupplied = ("tlsCertificate", "tlsKey")  # neither the stack file nor its ESC environment sets them
    with pytest.raises(MissingTlsCertificate) as refused:
        variant("staging", unsupplied=unsupplied)
    message = str(refused.value)
    assert "living-codex:tlsCertificate, living-codex:tlsKey is not set" in message
    assert "pulumi config set --secret --stack variant living-codex:tlsKey < privkey.pem" in message
    with pytest.raises(MissingTlsCertificate, match=r"but living-codex:tlsKey is not set"):
        variant("staging", append="  living-codex:tlsCertificate:\n    secure: AAABAC0\n", unsupplied=unsupplied)
    plain = variant("staging", ("living-codex:tls: true", "living-codex:tls: false"), unsupplied=unsupplied)
    assert [u["file"] for u in container(plain, "gateway")["uploads"]] == ["/etc/nginx/nginx.conf"]
