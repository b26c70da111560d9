"""Prometheus alert rules generated from the spec's thresholds: one change moves alert, dashboard
line and gate together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from infra.spec import EnvironmentSpec

P95 = 'histogram_quantile(0.95, sum by (le) (rate(codex_http_request_latency_seconds_bucket{job="living-codex"}[5m])))'
ERROR_RATE = (
    '(sum(rate(codex_http_requests_total{job="living-codex",status=~"5.."}[5m])) or vector(0))'
    ' / sum(rate(codex_http_requests_total{job="living-codex"}[5m]))'
)


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    severity: str
    summary: str
    for_: str = "1m"
    runbook: str = "runbooks/PRODUCTION_RUNBOOK.md#troubleshooting-guide"

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "service": "living-codex"},
            "annotations": {
                "summary": self.summary,
                "runbook": self.runbook,
            },
        }


def alert_rules(spec: EnvironmentSpec) -> list[AlertRule]:
    t = spec.thresholds
    p95_w, p95_c = t.p95LatencyMs.warning / 1000, t.p95LatencyMs.critical / 1000
    return [
        AlertRule(
            "CodexMemoryUsageWarning",
            f"max by (instance) (codex_memory_usage_percent) > {t.memoryUsagePercent.warning:g}",
            "warning",
            f"Memory above {t.memoryUsagePercent.warning:g}% of the limit",
            "2m",
        ),
        AlertRule(
            "CodexMemoryUsageCritical",
            f"max by (instance) (codex_memory_usage_percent) > {t.memoryUsagePercent.critical:g}",
            "critical",
            f"Memory above {t.memoryUsagePercent.critical:g}% of the limit",
        ),
        AlertRule(
            "CodexMemoryLeakDetected",
            "max by (instance) (codex_memory_leak_detected) == 1",
            "critical",
            "Sustained memory growth: a leak is likely",
        ),
        AlertRule(
            "CodexP95LatencyWarning",
            f"{P95} > {p95_w:g}",
            "warning",
            f"p95 latency above {t.p95LatencyMs.warning:g} ms",
            "2m",
        ),
        AlertRule(
            "CodexP95LatencyCritical",
            f"{P95} > {p95_c:g}",
            "critical",
            f"p95 latency above {t.p95LatencyMs.critical:g} ms",
        ),
        AlertRule(
            "CodexErrorRateWarning",
            f"{ERROR_RATE} > {t.errorRate.warning:g}",
            "warning",
            f"More than {t.errorRate.warning:.0%} of requests fail",
            "2m",
        ),
        AlertRule(
            "CodexErrorRateCritical",
            f"{ERROR_RATE} > {t.errorRate.critical:g}",
            "critical",
            f"More than {t.errorRate.critical:.0%} of requests fail",
        ),
        AlertRule(
            "CodexHealthScoreWarning",
            f"min by (instance) (codex_health_score) < {t.healthScore.warning:g}",
            "warning",
            f"Health score below {t.healthScore.warning:g}",
            "2m",
        ),
        AlertRule(
            "CodexHealthScoreCritical",
            f"min by (instance) (codex_health_score) < {t.healthScore.critical:g}",
            "critical",
            f"Health score below {t.healthScore.critical:g}",
        ),
        AlertRule(
            "CodexModuleFailures",
            f"max by (instance) (codex_module_failures) > {t.moduleFailures.warning:g}",
            "warning",
            "A module failed to load",
        ),
        AlertRule(
            "CodexInstanceDown",
            # up == 0 names a replica that stopped answering; absent() fires when no replica answers,
            # including when every pod is gone and service discovery has no target left to scrape.
            'absent(up{job="living-codex"} == 1) or up{job="living-codex"} == 0',
            "critical",
            "A Living Codex replica does not answer scrapes, or none does",
        ),
        AlertRule(
            "CodexDatabaseDown",
            'min by (instance) (codex_database_up{job="living-codex"}) == 0',
            "critical",
            "A replica cannot reach its database",
        ),
        AlertRule(
            "CodexRedisDown",
            'min by (instance) (codex_redis_up{job="living-codex"}) == 0',
            "warning",  # sessions fall back to SQL: degraded, not down
            "A replica cannot reach Redis; sessions fall back to SQL",
        ),
    ]


def render_alert_rules(spec: EnvironmentSpec, *, cluster: bool = False) -> str:
    """The app's rules; with `cluster` (a Kubernetes stack's Prometheus), also infra/platform_alerts.py's."""
    from infra.platform_alerts import platform_rules  # it builds on AlertRule, defined here

    groups = [{"name": "living-codex", "rules": [rule.as_dict() for rule in alert_rules(spec)]}]
    if cluster and (platform := platform_rules(spec)):
        groups.append({"name": "living-codex-platform", "rules": [rule.as_dict() for rule in platform]})
    return "# Generated from the spec by infra/alerts.py and infra/platform_alerts.py; do not edit.\n" + yaml.safe_dump(
        {"groups": groups}, sort_keys=False, width=200
    )
