"""Prometheus alert rules generated from the spec's thresholds: one change moves alert, dashboard
line and gate together. Each threshold gives a warning and a critical rule (`threshold_rules`) on a
measure of infra/promql.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from infra.promql import ERROR_RATE, HEALTH, MEMORY, P95
from infra.spec import EnvironmentSpec, Threshold


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


def threshold_rules(
    name: str, measure: str, level: Threshold, summary: str, *, per: float = 1, below: bool = False
) -> list[AlertRule]:
    """`name`Warning (held 2 minutes) and `name`Critical (1 minute): `measure` above (`below`: under) each
    level of the spec's threshold, divided by `per` into the measure's unit (1000 ms a second).
    `summary` is formatted with the level, in the spec's unit."""
    comparison = "<" if below else ">"
    return [
        AlertRule(
            f"{name}{severity.title()}",
            f"{measure} {comparison} {value / per:g}",
            severity,
            summary.format(value),
            held,
        )
        for severity, value, held in (("warning", level.warning, "2m"), ("critical", level.critical, "1m"))
    ]


LATENCY_ALERT = "CodexP95Latency"  # its Warning and Critical: the service's latency, as the machine allows


def is_latency_alert(name: str) -> bool:
    """A latency alert measures the machine as much as the stack: not judged when the gate's load
    generator was starved (codexops/gate.py)."""
    return name in (f"{LATENCY_ALERT}Warning", f"{LATENCY_ALERT}Critical")


def alert_rules(spec: EnvironmentSpec) -> list[AlertRule]:
    t = spec.thresholds
    return [
        *threshold_rules("CodexMemoryUsage", MEMORY, t.memoryUsagePercent, "Memory above {:g}% of the limit"),
        AlertRule(
            "CodexMemoryLeakDetected",
            "max by (instance) (codex_memory_leak_detected) == 1",
            "critical",
            "Sustained memory growth: a leak is likely",
        ),
        *threshold_rules(LATENCY_ALERT, P95, t.p95LatencyMs, "p95 latency above {:g} ms", per=1000),
        *threshold_rules("CodexErrorRate", ERROR_RATE, t.errorRate, "More than {:.0%} of requests fail"),
        *threshold_rules("CodexHealthScore", HEALTH, t.healthScore, "Health score below {:g}", below=True),
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
