"""A canary step's analysis: the canary's figures against the baseline's, from the stack's Prometheus.

PASS: enough requests on both sides, no hard limit crossed (the spec's critical thresholds) and no
regression beyond the relative limits. FAIL: a limit crossed. INCONCLUSIVE: too few requests to tell —
never a PASS, so a quiet step cannot wave a release through.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from infra import canary_queries as q
from infra.spec import Analysis, Thresholds

Decision = Literal["PASS", "FAIL", "INCONCLUSIVE"]
Query = Callable[[str], float | None]  # an instant PromQL query's single value; None when no series


@dataclass(frozen=True)
class Figures:
    """One side of a step, over the step's window."""

    requests: float
    error_rate: float | None  # None: no request answered
    p95_ms: float | None
    p99_ms: float | None

    @classmethod
    def measure(cls, query: Query, selector: str, window: str) -> Figures:
        def ms(seconds: float | None) -> float | None:
            return None if seconds is None or math.isnan(seconds) else round(seconds * 1000, 1)

        rate = query(q.error_rate(selector, window))
        return cls(
            requests=round(query(q.requests(selector, window)) or 0.0, 1),
            error_rate=None if rate is None or math.isnan(rate) else round(rate, 5),
            p95_ms=ms(query(q.latency_quantile(0.95, selector, window))),
            p99_ms=ms(query(q.latency_quantile(0.99, selector, window))),
        )


@dataclass(frozen=True)
class StepAnalysis:
    step: int  # 1-based
    weight: int
    canary: Figures
    baseline: Figures
    decision: Decision
    reasons: tuple[str, ...] = field(default=())
    window: str = ""  # the range both sides were measured over: the step's pause, e.g. "60s"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hard_limits(canary: Figures, thresholds: Thresholds) -> list[str]:
    """The spec's critical levels, whatever the baseline does."""
    broken = []
    if canary.error_rate is not None and canary.error_rate >= thresholds.errorRate.critical:
        broken.append(f"canary error rate {canary.error_rate:.2%} ≥ the critical {thresholds.errorRate.critical:.2%}")
    if canary.p95_ms is not None and canary.p95_ms >= thresholds.p95LatencyMs.critical:
        broken.append(f"canary p95 {canary.p95_ms:.0f} ms ≥ the critical {thresholds.p95LatencyMs.critical:.0f} ms")
    return broken


def regressions(canary: Figures, baseline: Figures, analysis: Analysis) -> list[str]:
    """What the canary does worse than the baseline beyond the relative limits."""
    found = []
    for name, ours, theirs in (("p95", canary.p95_ms, baseline.p95_ms), ("p99", canary.p99_ms, baseline.p99_ms)):
        if ours is None or theirs is None:
            continue
        allowed = max(theirs * (1 + analysis.maxRegressionPercent / 100), theirs + analysis.minLatencyDeltaMs)
        if ours > allowed:
            found.append(
                f"canary {name} {ours:.0f} ms > baseline {theirs:.0f} ms + {analysis.maxRegressionPercent:g}% "
                f"(at least {analysis.minLatencyDeltaMs:g} ms)"
            )
    ours_failed, theirs_failed = canary.error_rate, baseline.error_rate
    if (
        ours_failed is not None
        and theirs_failed is not None
        and ours_failed - theirs_failed > analysis.maxErrorRateIncrease
    ):
        found.append(
            f"canary error rate {ours_failed:.2%} > baseline {theirs_failed:.2%} + {analysis.maxErrorRateIncrease:.2%}"
        )
    return found


def judge(canary: Figures, baseline: Figures, thresholds: Thresholds, analysis: Analysis) -> tuple[Decision, list[str]]:
    """The step's decision and why. Too few requests on either side tells nothing, either way."""
    quiet = [
        f"{side} answered {figures.requests:.0f} requests, {analysis.minSamples} needed"
        for side, figures in (("canary", canary), ("baseline", baseline))
        if figures.requests < analysis.minSamples
    ]
    if quiet:
        return "INCONCLUSIVE", quiet
    failed = hard_limits(canary, thresholds) + regressions(canary, baseline, analysis)
    return ("FAIL", failed) if failed else ("PASS", [])


def analyse_step(
    query: Query, release: str, step: int, weight: int, window: str, thresholds: Thresholds, analysis: Analysis
) -> StepAnalysis:
    canary = Figures.measure(query, q.canary(release), window)
    baseline = Figures.measure(query, q.baseline(release), window)
    decision, reasons = judge(canary, baseline, thresholds, analysis)
    return StepAnalysis(step, weight, canary, baseline, decision, tuple(reasons), window)
