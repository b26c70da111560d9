"""The runbook's thresholds, from the stack's spec, judged on what Locust measured."""

from __future__ import annotations

from dataclasses import dataclass

from infra.spec import Thresholds


@dataclass(frozen=True)
class LoadVerdict:
    level: str  # pass, warning, critical
    reasons: list[str]


def judge(thresholds: Thresholds, p95_ms: float, error_rate: float, requests: int) -> LoadVerdict:
    if requests == 0:
        return LoadVerdict("critical", ["no request completed: the target did not answer"])
    latency, errors = thresholds.p95LatencyMs, thresholds.errorRate
    critical, warning = [], []
    if p95_ms > latency.critical:
        critical.append(f"p95 latency {p95_ms:.0f} ms is above the critical {latency.critical:g} ms")
    elif p95_ms > latency.warning:
        warning.append(f"p95 latency {p95_ms:.0f} ms is above the warning {latency.warning:g} ms")
    if error_rate > errors.critical:
        critical.append(f"error rate {error_rate:.2%} is above the critical {errors.critical:.0%}")
    elif error_rate > errors.warning:
        warning.append(f"error rate {error_rate:.2%} is above the warning {errors.warning:.0%}")
    if critical:
        return LoadVerdict("critical", critical + warning)
    return LoadVerdict("warning" if warning else "pass", warning)
