"""The app's environment, from the spec: plain settings, and the secret ones kept apart."""

from __future__ import annotations

from urllib.parse import quote

import pulumi

from infra.spec import EnvironmentSpec


def plain_env(spec: EnvironmentSpec, otlp_endpoint: str) -> dict[str, str]:
    """Non-secret settings (a ConfigMap on Kubernetes, plain env on Docker)."""
    return {
        "CODEX_ENVIRONMENT": spec.environment,
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
        "SHUTDOWN_DRAIN_SECONDS": "0",  # the preStop pause drains on Kubernetes; see App
        "SHUTDOWN_GRACE_SECONDS": str(spec.shutdown.graceSeconds),
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "LOG_DIR": "/app/logs",
    } | ({"HEAP_SIZE_LIMIT": str(spec.resources.memory_limit_bytes)} if spec.resources.memoryLimit else {})


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
