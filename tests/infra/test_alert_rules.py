"""Every generated alert rule, tested with the real `promtool test rules`: one firing and one quiet case."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.alerts import alert_rules, render_alert_rules
from infra.spec import load_spec

SPEC = load_spec("production")
JOB = 'job="living-codex"'
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"  # installed by make setup


def _gauge(name: str, value: float) -> list[dict[str, str]]:
    return [{"series": f'{name}{{instance="a",{JOB}}}', "values": f"{value:g}x15"}]


BOUNDS = ["0.25", "0.5", "0.75", "1", "2.5", "+Inf"]  # the app's latency buckets


def _p95_ms(bucket: str) -> float:
    """p95 as histogram_quantile interpolates it when every request lands in `bucket`."""
    i = BOUNDS.index(bucket)
    lower = float(BOUNDS[i - 1]) if i else 0.0
    return 1000 * (lower + 0.95 * (float(bucket) - lower))


def _bucket_above(ms: float, below: float = float("inf")) -> str:
    """The first bucket whose p95 is above `ms` (and must be below `below`): the spec's lines, not copies."""
    bucket = next(le for le in BOUNDS[:-1] if _p95_ms(le) > ms)
    assert _p95_ms(bucket) < below, f"no latency bucket between {ms} and {below} ms"
    return bucket


def _latency(bucket_with_all_requests: str) -> list[dict[str, str]]:
    """Histogram series where every request lands in one bucket (100 requests a minute)."""
    start = BOUNDS.index(bucket_with_all_requests)
    return [
        {
            "series": f'codex_http_request_latency_seconds_bucket{{{JOB},le="{le}"}}',
            "values": "0+100x15" if i >= start else "0+0x15",
        }
        for i, le in enumerate(BOUNDS)
    ]


def _errors(per_hundred: float) -> list[dict[str, str]]:
    return [
        {"series": f'codex_http_requests_total{{{JOB},status="500"}}', "values": f"0+{per_hundred:g}x15"},
        {"series": f'codex_http_requests_total{{{JOB},status="200"}}', "values": f"0+{100 - per_hundred:g}x15"},
    ]


# Values on either side of the spec's lines (the stack file's thresholds, or the defaults).
T = SPEC.thresholds
MEMORY_BETWEEN = (T.memoryUsagePercent.warning + T.memoryUsagePercent.critical) / 2
HEALTH_BETWEEN = (T.healthScore.warning + T.healthScore.critical) / 2  # lower is worse
ERRORS_BETWEEN = 100 * (T.errorRate.warning + T.errorRate.critical) / 2  # per hundred requests
LATENCY_BETWEEN = _bucket_above(T.p95LatencyMs.warning, below=T.p95LatencyMs.critical)


# alert name -> (series that fire it, series that must not, labels the alert carries)
CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, str]], dict[str, str]]] = {
    "CodexMemoryUsageWarning": (
        _gauge("codex_memory_usage_percent", MEMORY_BETWEEN),
        _gauge("codex_memory_usage_percent", T.memoryUsagePercent.warning / 2),
        {"instance": "a"},
    ),
    "CodexMemoryUsageCritical": (
        _gauge("codex_memory_usage_percent", (T.memoryUsagePercent.critical + 100) / 2),
        _gauge("codex_memory_usage_percent", MEMORY_BETWEEN),
        {"instance": "a"},
    ),
    "CodexMemoryLeakDetected": (
        _gauge("codex_memory_leak_detected", 1),
        _gauge("codex_memory_leak_detected", 0),
        {"instance": "a"},
    ),
    "CodexP95LatencyWarning": (_latency(LATENCY_BETWEEN), _latency(BOUNDS[0]), {}),
    "CodexP95LatencyCritical": (_latency(_bucket_above(T.p95LatencyMs.critical)), _latency(LATENCY_BETWEEN), {}),
    "CodexErrorRateWarning": (
        _errors(ERRORS_BETWEEN),
        [{"series": f'codex_http_requests_total{{{JOB},status="200"}}', "values": "0+100x15"}],
        {},
    ),
    "CodexErrorRateCritical": (_errors(min(100, 200 * T.errorRate.critical)), _errors(ERRORS_BETWEEN), {}),
    "CodexHealthScoreWarning": (
        _gauge("codex_health_score", HEALTH_BETWEEN),
        _gauge("codex_health_score", (T.healthScore.warning + 100) / 2),
        {"instance": "a"},
    ),
    "CodexHealthScoreCritical": (
        _gauge("codex_health_score", T.healthScore.critical / 2),
        _gauge("codex_health_score", HEALTH_BETWEEN),
        {"instance": "a"},
    ),
    "CodexModuleFailures": (
        _gauge("codex_module_failures", T.moduleFailures.warning + 1),
        _gauge("codex_module_failures", T.moduleFailures.warning),
        {"instance": "a"},
    ),
    "CodexInstanceDown": (
        [
            {"series": f'up{{instance="a",{JOB}}}', "values": "0x15"},
            {"series": f'up{{instance="b",{JOB}}}', "values": "1x15"},
        ],
        [{"series": f'up{{instance="a",{JOB}}}', "values": "1x15"}],
        {"instance": "a", "job": "living-codex"},
    ),
    "CodexDatabaseDown": (
        _gauge("codex_database_up", 0),
        _gauge("codex_database_up", 1),
        {"instance": "a"},
    ),
    "CodexRedisDown": (
        _gauge("codex_redis_up", 0),
        _gauge("codex_redis_up", 1),
        {"instance": "a"},
    ),
}


def test_every_rule_has_a_case() -> None:
    assert {rule.name for rule in alert_rules(SPEC)} == set(CASES)


def _test_case(alert: str, series: list[dict[str, str]], expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": "10m", "alertname": alert, "exp_alerts": expected}],
    }


def _every_replica_gone(rule: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """No `up` series at all (every pod gone, nothing left to scrape): absent() still fires."""
    other = [{"series": 'up{instance="p",job="prometheus"}', "values": "1x15"}]
    expected = {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}
    return other, [expected]


def test_promtool_fires_each_rule_and_stays_quiet_below_it(tmp_path: Path) -> None:
    (tmp_path / "alert-rules.yml").write_text(render_alert_rules(SPEC))
    check = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "alert-rules.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    rules = {rule.name: rule.as_dict() for rule in alert_rules(SPEC)}
    tests = []
    for alert, (firing, quiet, labels) in CASES.items():
        expected = {
            "exp_labels": {**rules[alert]["labels"], **labels},
            "exp_annotations": rules[alert]["annotations"],
        }
        tests.append(_test_case(alert, firing, [expected]))
        tests.append(_test_case(alert, quiet, []))
    tests.append(_test_case("CodexInstanceDown", *_every_replica_gone(rules["CodexInstanceDown"])))
    document = {"rule_files": ["alert-rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_thresholds_come_from_the_spec() -> None:
    from infra.spec import EnvironmentSpec, Threshold, Thresholds

    custom = EnvironmentSpec(
        **{**SPEC.model_dump(), "thresholds": Thresholds(p95LatencyMs=Threshold(warning=300, critical=700))}
    )
    rules = {rule.name: rule.expr for rule in alert_rules(custom)}
    assert rules["CodexP95LatencyWarning"].endswith("> 0.3")
    assert rules["CodexP95LatencyCritical"].endswith("> 0.7")
