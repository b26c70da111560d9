"""Fix-forward: a verification counts a firing alert only when its rule holds on samples scraped after
the deploy; a plain gate (no deploy time) counts every firing alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from codexops.alert_window import judge_since, measure, windowed
from infra.alerts import alert_rules
from infra.promql import P95
from infra.spec import load_spec

NOW = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
RULES = alert_rules(load_spec("staging"))


def firing(name: str, severity: str = "critical") -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity}, "annotations": {"summary": name}}


class Prometheus:
    """Answers instant queries: the rule's measure has samples (`data`), its condition holds (`holds`)."""

    def __init__(self, holds: bool = False, data: bool = True, fails: bool = False) -> None:
        self.holds, self.data, self.fails = holds, data, fails
        self.asked: list[str] = []

    def __call__(self, expression: str) -> list[dict[str, Any]]:
        self.asked.append(expression)
        if self.fails:
            raise ValueError("bad_data: parse error")
        condition = measure(expression) != expression
        answers = self.holds if condition else self.data
        return [{"metric": {}, "value": [0, "1.4"]}] if answers else []


def test_every_rule_splits_into_a_measure_and_a_threshold() -> None:
    for rule in RULES:
        assert measure(rule.expr) != rule.expr, rule.name


def test_range_windows_shrink_to_the_time_since_the_deploy_and_never_grow() -> None:
    assert windowed(P95, 42) == P95.replace("[5m]", "[42s]")
    assert windowed("rate(x[30s]) > 1", 600) == "rate(x[30s]) > 1"
    assert windowed("max(up) == 0", 42) == "max(up) == 0"  # instant selectors: the latest sample


def test_an_alert_firing_only_on_the_previous_releases_samples_does_not_count() -> None:
    prometheus = Prometheus(holds=False)
    judged = judge_since([firing("CodexP95LatencyCritical")], RULES, NOW - timedelta(seconds=45), NOW, prometheus)
    assert judged.counted == [] and judged.predating == ["CodexP95LatencyCritical"]
    rule = next(r.expr for r in RULES if r.name == "CodexP95LatencyCritical").replace("5m", "45s")
    assert prometheus.asked == [rule, measure(rule)]  # the condition does not hold, yet there are samples


def test_an_alert_that_holds_on_the_new_releases_samples_counts() -> None:
    alert = firing("CodexP95LatencyCritical")
    judged = judge_since([alert], RULES, NOW - timedelta(seconds=45), NOW, Prometheus(holds=True))
    assert judged.counted == [alert] and judged.predating == []


@pytest.mark.parametrize(
    ("alert", "since", "prometheus", "note"),
    [
        (firing("SomeoneElsesAlert"), NOW - timedelta(minutes=2), Prometheus(), "not a rule of infra/alerts.py"),
        (
            firing("CodexP95LatencyCritical"),
            NOW - timedelta(seconds=4),
            Prometheus(data=False),
            "no samples in the 4 s",
        ),
        (firing("CodexInstanceDown"), NOW - timedelta(minutes=2), Prometheus(fails=True), "could not re-evaluate"),
    ],
)
def test_what_cannot_be_judged_on_the_new_samples_counts_as_firing(
    alert: dict[str, Any], since: datetime, prometheus: Prometheus, note: str
) -> None:
    judged = judge_since([alert], RULES, since, NOW, prometheus)
    assert judged.counted == [alert] and judged.predating == []
    assert note in judged.notes[0]
