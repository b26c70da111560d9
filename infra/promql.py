"""The PromQL of the service's measures, written once: the alert rules compare them with the spec's
thresholds, the dashboard draws them."""

from __future__ import annotations

LATENCY_BUCKETS = 'codex_http_request_latency_seconds_bucket{job="living-codex"}'
ERROR_RATE = (
    '(sum(rate(codex_http_requests_total{job="living-codex",status=~"5.."}[5m])) or vector(0))'
    ' / sum(rate(codex_http_requests_total{job="living-codex"}[5m]))'
)
MEMORY = "max by (instance) (codex_memory_usage_percent)"  # the fullest replica
HEALTH = "min by (instance) (codex_health_score)"  # the least healthy replica


def latency_quantile(q: float) -> str:
    """The request latency's quantile `q` over 5 minutes, in seconds, across the replicas."""
    return f"histogram_quantile({q:g}, sum by (le) (rate({LATENCY_BUCKETS}[5m])))"


P95 = latency_quantile(0.95)


def in_ms(seconds: str) -> str:
    """An expression in seconds, in milliseconds (the spec's and the dashboard's unit)."""
    return f"{seconds} * 1000"
