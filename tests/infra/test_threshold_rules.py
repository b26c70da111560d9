"""One rule per threshold: a warning and a critical alert from the spec's pair, on the measure the
dashboard draws."""

from __future__ import annotations

from infra.alerts import alert_rules, threshold_rules
from infra.dashboard import dashboard
from infra.promql import ERROR_RATE, P95, in_ms
from infra.spec import Threshold, load_spec


def test_a_threshold_gives_a_warning_held_longer_and_a_critical() -> None:
    warning, critical = threshold_rules(
        "CodexX", "m", Threshold(warning=250, critical=750), "x above {:g} ms", per=1000
    )
    assert (warning.name, warning.expr, warning.severity, warning.for_) == (
        "CodexXWarning",
        "m > 0.25",
        "warning",
        "2m",
    )
    assert (critical.name, critical.expr, critical.severity, critical.for_) == (
        "CodexXCritical",
        "m > 0.75",
        "critical",
        "1m",
    )
    assert (warning.summary, critical.summary) == ("x above 250 ms", "x above 750 ms")  # in the spec's unit
    lower = threshold_rules("CodexY", "h", Threshold(warning=80, critical=60), "below {:g}", below=True)
    assert [rule.expr for rule in lower] == ["h < 80", "h < 60"]


def test_the_dashboard_draws_what_the_alerts_compare() -> None:
    spec = load_spec("production")
    rules = {rule.name: rule.expr for rule in alert_rules(spec)}
    panels = {panel["title"]: panel for panel in dashboard(spec)["panels"]}
    latency = panels["Latency p50 / p95 / p99"]
    assert rules["CodexP95LatencyCritical"] == f"{P95} > {spec.thresholds.p95LatencyMs.critical / 1000:g}"
    assert in_ms(P95) in [target["expr"] for target in latency["targets"]]
    steps = [step["value"] for step in latency["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]
    assert steps == [spec.thresholds.p95LatencyMs.warning, spec.thresholds.p95LatencyMs.critical]
    assert rules["CodexErrorRateWarning"].startswith(ERROR_RATE)
    assert panels["Error rate"]["targets"][0]["expr"] == ERROR_RATE
