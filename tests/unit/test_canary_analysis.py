"""A canary step's decision: hard limits, relative limits against the baseline, and too-few-samples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from codexops.rollout.analysis import Figures, analyse_step, judge
from infra import canary_queries
from infra.spec import Analysis, RolloutStep, Thresholds

LIMITS = Thresholds()
ANALYSIS = Analysis()
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"  # installed by make setup
BASELINE = Figures(requests=900, error_rate=0.0, p95_ms=40.0, p99_ms=80.0)


def healthy(**changes: float) -> Figures:
    figures = {"requests": 100.0, "error_rate": 0.0, "p95_ms": 42.0, "p99_ms": 85.0, **changes}
    return Figures(**figures)


def test_a_canary_like_its_baseline_passes() -> None:
    assert judge(healthy(), BASELINE, LIMITS, ANALYSIS) == ("PASS", [])


@pytest.mark.parametrize("side", ["canary", "baseline"])
def test_a_quiet_step_is_inconclusive_never_a_pass(side: str) -> None:
    quiet = Figures(requests=ANALYSIS.minSamples - 1, error_rate=0.0, p95_ms=40.0, p99_ms=80.0)
    canary, baseline = (quiet, BASELINE) if side == "canary" else (healthy(), quiet)
    decision, reasons = judge(canary, baseline, LIMITS, ANALYSIS)
    assert decision == "INCONCLUSIVE" and side in reasons[0]


def test_latency_beyond_the_relative_limit_fails_below_the_hard_limit() -> None:
    allowed = max(40.0 * (1 + ANALYSIS.maxRegressionPercent / 100), 40.0 + ANALYSIS.minLatencyDeltaMs)
    slow = healthy(p95_ms=allowed + 5)  # far below the critical level
    decision, reasons = judge(slow, BASELINE, LIMITS, ANALYSIS)
    assert decision == "FAIL" and "p95" in reasons[0] and "baseline" in reasons[0]


def test_a_small_absolute_difference_is_noise_not_a_regression() -> None:
    fast = Figures(requests=900, error_rate=0.0, p95_ms=2.0, p99_ms=4.0)  # +50% is 1 ms
    assert judge(healthy(p95_ms=3.0, p99_ms=6.0), fast, LIMITS, ANALYSIS)[0] == "PASS"


def test_the_critical_threshold_is_a_hard_limit_even_when_the_baseline_is_as_bad() -> None:
    both_bad = Figures(requests=900, error_rate=0.2, p95_ms=40.0, p99_ms=80.0)
    decision, reasons = judge(healthy(error_rate=0.2), both_bad, LIMITS, ANALYSIS)
    assert decision == "FAIL" and "critical" in reasons[0]


def test_more_errors_than_the_baseline_fails() -> None:
    decision, reasons = judge(healthy(error_rate=ANALYSIS.maxErrorRateIncrease + 0.005), BASELINE, LIMITS, ANALYSIS)
    assert decision == "FAIL" and "error rate" in reasons[0]


def test_the_step_reads_each_side_by_its_release_label() -> None:
    asked: list[str] = []

    def query(expression: str) -> float | None:
        asked.append(expression)
        canary = 'version="r2"' in expression
        if "histogram_quantile(0.95" in expression:
            return 0.300 if canary else 0.040
        if "histogram_quantile(0.99" in expression:
            return 0.400 if canary else 0.080
        return 0.0 if 'status=~"5.."' in expression else (120.0 if canary else 1000.0)

    step = analyse_step(query, "r2", 1, 10, "1m", LIMITS, ANALYSIS)
    assert step.canary.p95_ms == 300.0 and step.baseline.p95_ms == 40.0 and step.decision == "FAIL"
    assert all("codex_build_info" in expression for expression in asked)
    assert canary_queries.baseline("r2") in " ".join(asked)


def test_the_queries_split_real_series_by_release_in_promtool(tmp_path: Path) -> None:
    """promtool evaluates the queries on two replicas, r1 (baseline) and r2 (canary): each side sees only its
    own requests and errors."""
    canary, base = canary_queries.canary("r2"), canary_queries.baseline("r2")
    series = [
        ('codex_build_info{job="living-codex",instance="a:1",version="r1"}', "1+0x20"),
        ('codex_build_info{job="living-codex",instance="b:1",version="r2"}', "1+0x20"),
        ('codex_http_requests_total{job="living-codex",instance="a:1",status="200"}', "0+60x20"),
        ('codex_http_requests_total{job="living-codex",instance="b:1",status="200"}', "0+9x20"),
        ('codex_http_requests_total{job="living-codex",instance="b:1",status="503"}', "0+1x20"),
    ]
    tests = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series],
                "promql_expr_test": [
                    {
                        "expr": f"round({canary_queries.requests(canary, '5m')})",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 50}],
                    },
                    {
                        "expr": f"round({canary_queries.requests(base, '5m')})",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 300}],
                    },
                    {
                        "expr": f"{canary_queries.error_rate(canary, '5m')} * 100",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 10}],
                    },
                    {
                        "expr": f"{canary_queries.error_rate(base, '5m')}",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 0}],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([PROMTOOL, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("pause", ["0s", "61m", "99999999999m", "60s\n", "60"])
def test_a_step_pause_out_of_bounds_or_malformed_is_refused(pause: str) -> None:
    with pytest.raises(ValueError, match="pause"):
        RolloutStep(weight=10, pause=pause)
