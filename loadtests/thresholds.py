"""The runbook's thresholds, from the stack's spec, judged on what Locust measured at the spec's rate."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.spec import Load, Threshold, Thresholds

if TYPE_CHECKING:  # Locust is imported by the locustfile only (it patches the standard library)
    from locust.stats import StatsEntry


@dataclass(frozen=True)
class LoadVerdict:
    level: str  # pass, warning, critical
    reasons: list[str]


@dataclass(frozen=True)
class Measurement:
    """What a load run measured, the figures judge() reads."""

    requests: int
    p95_ms: float
    error_rate: float  # failed requests over all, 0..1
    achieved_rps: float | None = None  # the steady rate after the ramp (the gate shape); None: not judged

    @classmethod
    def of_stats(cls, stats: Mapping[str, Any]) -> Measurement:
        """From the gate's figures of Locust's CSV (codexops/gate.py)."""
        return cls(stats["requests"], stats["p95_ms"], stats["error_rate"], stats.get("achieved_rps"))

    @classmethod
    def of_locust(cls, total: StatsEntry, achieved_rps: float | None) -> Measurement:
        """From Locust's own totals, when it quits (loadtests/locustfile.py)."""
        p95 = total.get_response_time_percentile(0.95) or 0.0
        return cls(total.num_requests, p95, total.fail_ratio, achieved_rps)


@dataclass(frozen=True)
class Limit:
    """A measured figure against its threshold in the spec, and how both read in a reason."""

    label: str
    value: Callable[[Measurement], float]
    threshold: Callable[[Thresholds], Threshold]
    shown: str  # the measured value's format
    limit: str  # the threshold's format

    def breach(self, measured: Measurement, thresholds: Thresholds) -> tuple[str, str] | None:
        """(critical or warning, why), the worse level first; None within both."""
        value, level = self.value(measured), self.threshold(thresholds)
        for severity, bound in (("critical", level.critical), ("warning", level.warning)):
            if value > bound:
                return (
                    severity,
                    f"{self.label} {self.shown.format(value)} is above the {severity} {self.limit.format(bound)}",
                )
        return None


LIMITS = (
    Limit("p95 latency", lambda m: m.p95_ms, lambda t: t.p95LatencyMs, "{:.0f} ms", "{:g} ms"),
    Limit("error rate", lambda m: m.error_rate, lambda t: t.errorRate, "{:.2%}", "{:.0%}"),
)


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


def judge(measured: Measurement, thresholds: Thresholds, load: Load) -> LoadVerdict:
    """The spec's verdict on a load run: critical when a figure is above its critical level (or the rate
    missed its target and the spec says that is critical), warning when above a warning level."""
    if measured.requests == 0:
        return LoadVerdict("critical", ["no request completed: the target did not answer"])
    found: dict[str, list[str]] = {"critical": [], "warning": []}
    for limit in LIMITS:
        breach = limit.breach(measured, thresholds)
        if breach:
            found[breach[0]].append(breach[1])
    missed = _rate_breach(load, measured.achieved_rps) if measured.achieved_rps is not None else None
    if missed:
        found["critical" if load.missedTarget == "critical" else "warning"].append(missed)
    if found["critical"]:
        return LoadVerdict("critical", found["critical"] + found["warning"])
    return LoadVerdict("warning" if found["warning"] else "pass", found["warning"])
