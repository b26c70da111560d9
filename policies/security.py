"""The runbook's security checklist, as policies."""

from __future__ import annotations

import re
from collections.abc import Iterable

from policies.core import (
    CERTIFICATE,
    CONFIGMAP,
    CONTAINER,
    CREDENTIAL_NAME,
    CRITICAL,
    HIGH,
    POD_OWNERS,
    SECRET,
    SERVICE,
    URL_WITH_PASSWORD,
    WORKLOADS,
    Props,
    containers,
    docker_env,
    nginx_configs,
    resource_policy,
)

SOURCES_ANNOTATION = "living-codex.io/secret-sources"
HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy")


@resource_policy(
    "gateway-https-in-production",
    "The production gateway serves HTTPS with HSTS.",
    CRITICAL,
    "Set living-codex:tls: true in the production stack (cert-manager or tlsSecretName).",
    (SERVICE, CONFIGMAP),
)
def gateway_https(resource_type: str, props: Props) -> Iterable[str]:
    if resource_type == SERVICE and props.get("spec", {}).get("type") == "LoadBalancer":
        ports = [p.get("port") for p in props["spec"].get("ports", [])]
        if 443 not in ports:
            yield "the public LoadBalancer has no port 443: HTTPS is off"
    for conf in nginx_configs(resource_type, props):
        if "ssl_certificate" not in conf:
            yield "nginx.conf has no TLS listener (ssl_certificate)"
        if "Strict-Transport-Security" not in conf:
            yield "nginx.conf sends no Strict-Transport-Security header"


@resource_policy(
    "secrets-encrypted-in-config",
    "Secrets come from encrypted config or are generated.",
    CRITICAL,
    "Run: pulumi config set --secret <key> <value>, and remove the plaintext value.",
    (SECRET, CONTAINER),
)
def secrets_encrypted(resource_type: str, props: Props) -> Iterable[str]:
    if resource_type == SECRET:
        sources = props.get("metadata", {}).get("annotations", {}).get(SOURCES_ANNOTATION, "")
    else:
        sources = next(
            (
                str(label.get("value"))
                for label in props.get("labels", []) or []
                if label.get("label") == SOURCES_ANNOTATION
            ),
            "",
        )
    for entry in filter(None, sources.split(",")):
        key, _, source = entry.partition("=")
        if source == "plaintext-config":
            yield f"{key} is a plaintext value in the stack file"


@resource_policy(
    "jwt-secret-configured",
    "The app gets JWT_SECRET from a Secret, never a literal.",
    HIGH,
    "Reference JWT_SECRET with valueFrom.secretKeyRef to the stack's Secret.",
    (*WORKLOADS, SECRET),
)
def jwt_secret(resource_type: str, props: Props) -> Iterable[str]:
    if resource_type == SECRET:
        if props.get("metadata", {}).get("name") == "living-codex-secrets" and "JWT_SECRET" not in (
            props.get("stringData") or props.get("data") or {}
        ):
            yield "the stack's Secret has no JWT_SECRET"
        return
    for container in containers(props):
        for env in container.get("env", []) or []:
            if env.get("name") == "JWT_SECRET" and "secretKeyRef" not in (env.get("valueFrom") or {}):
                yield f"container {container.get('name')}: JWT_SECRET is not read from a Secret"


@resource_policy(
    "credentials-from-secrets",
    "Database and Redis credentials never sit in plain env or ConfigMaps.",
    CRITICAL,
    "Move the value into the stack's Secret and use secretKeyRef.",
    (*POD_OWNERS, CONFIGMAP),
)
def credentials_from_secrets(resource_type: str, props: Props) -> Iterable[str]:
    if resource_type == CONFIGMAP:
        for key, value in (props.get("data") or {}).items():
            if CREDENTIAL_NAME.search(key) or URL_WITH_PASSWORD.search(str(value)):
                yield f"ConfigMap key {key} holds a credential"
        return
    for container in containers(props):
        for env in container.get("env", []) or []:
            name, value = str(env.get("name", "")), env.get("value")
            if name.endswith("_FILE") and str(value).startswith("/"):
                continue  # the path of a mounted secret file (e.g. Grafana's __FILE convention), not the value
            if value is not None and (CREDENTIAL_NAME.search(name) or URL_WITH_PASSWORD.search(str(value))):
                yield f"container {container.get('name')}: {name} is a literal credential"


@resource_policy(
    "redis-tls-and-password",
    "Redis needs a password, and TLS (rediss://) on Kubernetes.",
    HIGH,
    "Set living-codex:redis.tls: true and keep redisPassword set.",
    (SECRET, CONTAINER),
)
def redis_tls(resource_type: str, props: Props) -> Iterable[str]:
    if resource_type == SECRET:
        url = str((props.get("stringData") or {}).get("REDIS_CONNECTION_STRING", ""))
        if url and not url.startswith("rediss://"):
            yield "REDIS_CONNECTION_STRING is not TLS (rediss://)"
    else:
        url = docker_env(props).get("REDIS_CONNECTION_STRING", "")
    if url and not URL_WITH_PASSWORD.search(url):
        yield "REDIS_CONNECTION_STRING has no password"


@resource_policy(
    "nginx-security-headers",
    "The gateway sets security headers and a body-size limit.",
    HIGH,
    "Render nginx.conf from infra/templates/nginx.conf.j2.",
    (CONFIGMAP, CONTAINER),
)
def nginx_headers(resource_type: str, props: Props) -> Iterable[str]:
    for conf in nginx_configs(resource_type, props):
        for header in HEADERS:
            if header not in conf:
                yield f"nginx.conf does not set {header}"
        if "client_max_body_size" not in conf:
            yield "nginx.conf has no client_max_body_size"


# Names reserved for documentation and testing (RFC 2606, RFC 6761): no certificate can be issued for them.
PLACEHOLDER_DOMAIN = re.compile(r"(^|\.)(example\.(com|net|org)|example|test|invalid|localhost|local)$", re.I)


@resource_policy(
    "no-placeholder-domain",
    "Public certificates name a real domain, not a documentation placeholder.",
    HIGH,
    "Set living-codex:domain to the production domain (its DNS zone at the DNS-01 provider).",
    (CERTIFICATE,),
)
def real_domain(resource_type: str, props: Props) -> Iterable[str]:
    for name in (props.get("spec") or {}).get("dnsNames") or []:
        in_cluster = str(name).endswith(".svc") or "." not in str(name)
        if not in_cluster and PLACEHOLDER_DOMAIN.search(str(name)):
            yield f"certificate for {name}: a placeholder domain"


@resource_policy(
    "metrics-not-public",
    "The public gateway refuses /metrics; Prometheus scrapes the app's pods directly.",
    HIGH,
    "Render the gateway's nginx.conf with render_nginx(..., container=Container(...)).",
    (CONFIGMAP, CONTAINER),
)
def metrics_not_public(resource_type: str, props: Props) -> Iterable[str]:
    for conf in nginx_configs(resource_type, props):
        block = re.search(r"location /metrics \{(.*?)\n\s*\}", conf, re.S)
        if block is None or "proxy_pass" in block.group(1) or "deny all" not in block.group(1):
            yield "nginx.conf serves /metrics to the public"


POLICIES = [
    gateway_https,
    secrets_encrypted,
    jwt_secret,
    credentials_from_secrets,
    redis_tls,
    nginx_headers,
    real_domain,
    metrics_not_public,
]
