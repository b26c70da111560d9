"""Every dashboard query names only metrics the service really exports."""

from __future__ import annotations

import re

from infra.alerts import alert_rules
from infra.dashboard import dashboard, dashboard_queries
from infra.spec import load_spec
from tests.conftest import RunningApp

METRIC = re.compile(r"\b(codex_[a-z_]+)")


def _exported(exposition: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}


async def test_every_dashboard_and_alert_metric_is_exported(codex: RunningApp) -> None:
    await codex.client.get("/health")  # request metrics have series once a request was served
    exposition = (await codex.client.get("/metrics/prometheus")).text
    exported = _exported(exposition)
    spec = load_spec("production")
    used = {m for q in dashboard_queries(spec) for m in METRIC.findall(q)}
    used |= {m for rule in alert_rules(spec) for m in METRIC.findall(rule.expr)}
    assert used, "no metric found in the queries"
    missing = sorted(used - exported)
    assert not missing, f"queries use metrics the service does not export: {missing}"


def test_dashboard_has_the_promised_panels_and_threshold_lines() -> None:
    spec = load_spec("production")
    board = dashboard(spec)
    titles = [p["title"] for p in board["panels"]]
    for wanted in (
        "Request rate",
        "Latency p50 / p95 / p99",
        "Error rate",
        "Memory usage",
        "Sessions",
        "Health score",
        "AI queue",
        "AI processing time p95",
    ):
        assert wanted in titles
    latency = next(p for p in board["panels"] if p["title"].startswith("Latency"))
    values = [s["value"] for s in latency["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert values == [None, spec.thresholds.p95LatencyMs.warning, spec.thresholds.p95LatencyMs.critical]
