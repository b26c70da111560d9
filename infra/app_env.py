"""The app's environment, from the spec: plain settings, and the secret ones kept apart."""

from __future__ import annotations

from urllib.parse import quote

import pulumi

from infra.spec import EnvironmentSpec
from infra.spec_env import GATE_USERNAME, Platform, spec_env

__all__ = ["GATE_USERNAME", "plain_env", "postgres_url", "redis_url", "spec_env"]


def plain_env(spec: EnvironmentSpec, platform: Platform, otlp_endpoint: str) -> dict[str, str]:
    """Non-secret settings (a ConfigMap on Kubernetes, plain env on Docker): the spec's, then fixed ones."""
    return spec_env(spec, platform) | {
        "CODEX_URLS": f"http://+:{spec.ports.app}",
        "ENABLE_DISTRIBUTED_SESSIONS": "true",
        "SESSION_STORAGE_ENABLE_FALLBACK": "true",
        "ENABLE_PERFORMANCE_OPTIMIZATION": "true",
        "ENABLE_RESPONSE_CACHING": "true",
        "ENABLE_DATABASE_OPTIMIZATION": "true",
        "ENABLE_AI_PIPELINE_MONITORING": "true",
        "ENABLE_MEMORY_OPTIMIZATION": "true",
        "PROMETHEUS_ENABLED": "true",
        "GRAFANA_ENABLED": "true",
        "JWT_EXPIRATION_HOURS": "24",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "LOG_DIR": "/app/logs",
    }


def _encoded(password: pulumi.Output[str]) -> pulumi.Output[str]:
    """A password as a URL's userinfo: '@', ':', '/', '%' in a given password must not end it early."""
    return password.apply(lambda value: quote(value, safe=""))


def postgres_url(host: str, port: int, password: pulumi.Output[str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(
        pulumi.Output.concat("postgresql://codex:", _encoded(password), f"@{host}:{port}/livingcodex")
    )


def redis_url(host: str, port: int, password: pulumi.Output[str], tls: bool) -> pulumi.Output[str]:
    scheme = "rediss" if tls else "redis"
    query = "?ssl_ca_certs=/etc/redis-tls/ca.crt" if tls else ""
    return pulumi.Output.secret(pulumi.Output.concat(f"{scheme}://:", _encoded(password), f"@{host}:{port}/0{query}"))
