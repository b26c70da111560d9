"""The app's environment as the spec decides it, for Kubernetes, Docker and the local environment alike.

Pure (no Pulumi): the local environment imports it too, so a spec field reaches every platform or none.
"""

from __future__ import annotations

from typing import Literal

from infra.spec import EnvironmentSpec

GATE_USERNAME = "codex-gate"  # the gate's own editor account; its password is the secret GATE_PASSWORD
LOCAL_PROXIES = "127.0.0.1,::1"  # the local environment's nginx, on this machine
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
        }
        | ({"HEAP_SIZE_LIMIT": str(spec.resources.memory_limit_bytes)} if spec.resources.memoryLimit else {})
        | _release(spec, platform)
    )


def _release(spec: EnvironmentSpec, platform: Platform) -> dict[str, str]:
    """The release id the stack file names, so /health, logs and history say the same id. Locally each
    replica is told the release it actually runs (codexops/localenv.py): a rolling deploy mixes two."""
    return {"CODEX_RELEASE": spec.release} if spec.release and platform != "local" else {}
