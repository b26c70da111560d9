"""The runbook's thresholds, from the stack's spec, judged on what Locust measured at the spec's rate."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from infra.spec import Load, Thresholds


@dataclass(frozen=True)
class LoadVerdict:
    level: str  # pass, warning, critical
    reasons: list[str]


def steady_rps(per_second: dict[int, int], ramp_seconds: int) -> float:
    """Requests per second after the ramp, from Locust's per-second counts (the last, partial second
    left out)."""
    seconds = sorted(per_second)[ramp_seconds:-1]
    return sum(per_second[s] for s in seconds) / len(seconds) if seconds else 0.0


def steady_rps_from_history(path: Path, ramp_seconds: int) -> float | None:
    """The same from Locust's --csv-full-history file: aggregated requests between the ramp's end and
    the last row, over the time between them."""
    if not path.exists():
        return None
    with path.open() as handle:
        rows = [
            (int(r["Timestamp"]), int(r["Total Request Count"]))
            for r in csv.DictReader(handle)
            if r["Name"] == "Aggregated"
        ]
    if len(rows) < 2:
        return None
    start = rows[0][0] + ramp_seconds
    steady = [r for r in rows if r[0] >= start] or rows
    (t0, n0), (t1, n1) = steady[0], rows[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else None


def _rate_breach(load: Load, achieved: float) -> str | None:
    floor = load.targetTolerance * load.targetRps
    if achieved >= floor:
        return None
    return (
        f"achieved {achieved:.1f} RPS of the {load.targetRps:g} RPS target "
        f"(below {load.targetTolerance:.0%} of it): the stack did not take the spec's load"
    )


def judge(
    thresholds: Thresholds,
    p95_ms: float,
    error_rate: float,
    requests: int,
    achieved_rps: float | None = None,
    load: Load | None = None,
) -> LoadVerdict:
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
    if load is not None and achieved_rps is not None:
        missed = _rate_breach(load, achieved_rps)
        if missed:
            (critical if load.missedTarget == "critical" else warning).append(missed)
    if critical:
        return LoadVerdict("critical", critical + warning)
    return LoadVerdict("warning" if warning else "pass", warning)
