"""The Grafana dashboard, generated so its threshold lines follow the spec."""

from __future__ import annotations

import json
from typing import Any

from infra.promql import ERROR_RATE, P95, in_ms, latency_quantile
from infra.spec import EnvironmentSpec, Threshold

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def _lines(level: Threshold) -> list[tuple[str, float]]:
    """A threshold's warning and critical levels, drawn on its panel as the alerts compare them."""
    return [("orange", level.warning), ("red", level.critical)]


def _panel(
    pid: int,
    title: str,
    targets: list[tuple[str, str]],
    unit: str,
    *,
    thresholds: list[tuple[str, float]] | None = None,
    x: int = 0,
    y: int = 0,
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for color, value in thresholds or []]
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "targets": [
            {"refId": chr(65 + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "custom": {"thresholdsStyle": {"mode": "line" if thresholds else "off"}},
            },
            "overrides": [],
        },
    }


def dashboard(spec: EnvironmentSpec) -> dict[str, Any]:
    t = spec.thresholds
    panels = [
        _panel(
            1,
            "Request rate",
            [('sum by (route) (rate(codex_http_requests_total{job="living-codex"}[5m]))', "{{route}}")],
            "reqps",
        ),
        _panel(
            2,
            "Latency p50 / p95 / p99",
            [(in_ms(latency_quantile(0.5)), "p50"), (in_ms(P95), "p95"), (in_ms(latency_quantile(0.99)), "p99")],
            "ms",
            thresholds=_lines(t.p95LatencyMs),
            x=12,
        ),
        _panel(
            3,
            "Error rate",
            [(ERROR_RATE, "5xx share")],
            "percentunit",
            thresholds=_lines(t.errorRate),
            y=8,
        ),
        _panel(
            4,
            "Memory usage",
            [("codex_memory_usage_percent", "{{instance}}")],
            "percent",
            thresholds=_lines(t.memoryUsagePercent),
            x=12,
            y=8,
        ),
        _panel(
            5,
            "Sessions",
            [
                ("sum(codex_active_sessions) / count(codex_active_sessions)", "active"),
                ("max(codex_session_fallback_active)", "SQL fallback"),
            ],
            "short",
            y=16,
        ),
        _panel(
            6,
            "Health score",
            [("codex_health_score", "{{instance}}")],
            "short",
            thresholds=[("red", 0), ("orange", t.healthScore.critical), ("green", t.healthScore.warning)],
            x=12,
            y=16,
        ),
        _panel(
            7,
            "AI queue",
            [
                ("sum(codex_ai_pipeline_queue_depth)", "queued"),
                ("sum(codex_ai_pipeline_active_jobs)", "running"),
            ],
            "short",
            y=24,
        ),
        _panel(
            8,
            "AI processing time p95",
            [
                (
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(codex_ai_pipeline_processing_seconds_bucket[5m]))) * 1000",
                    "p95",
                )
            ],
            "ms",
            x=12,
            y=24,
        ),
    ]
    return {
        "uid": f"living-codex-{spec.stack}",
        "title": f"Living Codex ({spec.stack})",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "tags": ["living-codex"],
        "time": {"from": "now-1h", "to": "now"},
        "panels": panels,
    }


def render_dashboard(spec: EnvironmentSpec) -> str:
    return json.dumps(dashboard(spec), indent=2)


def dashboard_queries(spec: EnvironmentSpec) -> list[str]:
    return [target["expr"] for panel in dashboard(spec)["panels"] for target in panel["targets"]]


GRAFANA_DATASOURCE = """apiVersion: 1
datasources:
  - name: Prometheus
    uid: prometheus
    type: prometheus
    access: proxy
    url: {url}
    isDefault: true
"""

GRAFANA_DASHBOARD_PROVIDER = """apiVersion: 1
providers:
  - name: living-codex
    type: file
    options:
      path: /var/lib/grafana/dashboards
"""
