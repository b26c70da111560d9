"""The app's environment: every variable the spec decides, for Kubernetes, Docker and the local
environment alike, and the connection strings (one builder, user and password URL-encoded).

Pure (no Pulumi): the local environment imports it too, so a spec field reaches every platform or none.
The program wraps the builders for its secret passwords (infra/program.py).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from infra.pg_scripts import DATABASE, ROLE
from infra.spec import EnvironmentSpec

GATE_USERNAME = "codex-gate"  # the gate's own editor account; its password is the secret GATE_PASSWORD
LOCAL_PROXIES = "127.0.0.1,::1"  # the local environment's nginx, on this machine
REDIS_TLS_CA = "/etc/redis-tls/ca.crt"  # where the app's pods mount the internal CA (infra/components/app.py)
Platform = Literal["kubernetes", "docker", "local"]


def trusted_proxies(spec: EnvironmentSpec, platform: Platform) -> str:
    """Whose X-Forwarded-For the app believes: the gateway's addresses on each platform. Anyone else's
    header is ignored, so login throttling counts real clients, never the gateway."""
    if platform == "kubernetes":
        assert spec.podNetwork, "the spec refuses a Kubernetes stack without podNetwork"
        return spec.podNetwork  # NetworkPolicies let only the gateway's (and Prometheus') pods reach the app
    if platform == "docker":
        return spec.dockerSubnet  # the stack's network: the gateway is the only proxy on it
    return LOCAL_PROXIES


def spec_env(spec: EnvironmentSpec, platform: Platform) -> dict[str, str]:
    """Every app variable the spec decides, for every platform: the one place they are set."""
    thresholds = spec.thresholds
    # Kubernetes drains in the preStop pause before SIGTERM; elsewhere the app drains itself.
    drain = 0 if platform == "kubernetes" else spec.shutdown.drainSeconds
    return (
        {
            "CODEX_ENVIRONMENT": spec.environment,
            "TRUSTED_PROXIES": trusted_proxies(spec, platform),
            "MEMORY_WARNING_PERCENT": str(thresholds.memoryUsagePercent.warning),
            "MEMORY_CRITICAL_PERCENT": str(thresholds.memoryUsagePercent.critical),
            "HEALTH_SCORE_WARNING": str(thresholds.healthScore.warning),
            "HEALTH_SCORE_CRITICAL": str(thresholds.healthScore.critical),
            "SHUTDOWN_DRAIN_SECONDS": str(drain),
            "SHUTDOWN_GRACE_SECONDS": str(spec.shutdown.graceSeconds),
            "GATE_USERNAME": GATE_USERNAME,
            "DATABASE_POOL_SIZE": str(spec.database_pool_size),  # the replicas' pools fit max_connections
        }
        | ({"HEAP_SIZE_LIMIT": str(spec.resources.memory_limit_bytes)} if spec.resources.memoryLimit else {})
        | _release(spec, platform)
    )


def _release(spec: EnvironmentSpec, platform: Platform) -> dict[str, str]:
    """The release id the stack file names, so /health, logs and history say the same id. Locally each
    replica is told the release it actually runs (codexops/localenv.py): a rolling deploy mixes two."""
    return {"CODEX_RELEASE": spec.release} if spec.release and platform != "local" else {}


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


def _userinfo(user: str, password: str) -> str:
    """'@', ':', '/', '%' in a given user or password must not end the URL's userinfo early."""
    return f"{quote(user, safe='')}:{quote(password, safe='')}"


def postgres_dsn(host: str, port: int, password: str, user: str = ROLE) -> str:
    return f"postgresql://{_userinfo(user, password)}@{host}:{port}/{DATABASE}"


def redis_dsn(host: str, port: int, password: str, tls: bool = False) -> str:
    scheme = "rediss" if tls else "redis"
    query = f"?ssl_ca_certs={REDIS_TLS_CA}" if tls else ""
    return f"{scheme}://{_userinfo('', password)}@{host}:{port}/0{query}"
