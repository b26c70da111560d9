"""The full gate's baseline: the candidate against the release serving the stack it would be promoted to.

After the load, the same figures (requests, RPS, p50/p95/p99, error rate) are read for the gated stack and
for each stack whose `living-codex:promotion` source it is (production for staging), from each stack's
Prometheus, over the load's own window, with the canary analysis' queries (infra/canary_queries.py) on
every replica. Both sides are server-side figures from one instrument, so they compare; the load step's
figures are the client's. Informational: the baseline never changes the gate's verdict (a quiet
production must not block a gate; the canary steps judge regressions when the release is promoted). A
stack that answered fewer than its `rollout.analysis.minSamples` requests is "not enough traffic", not a
comparison; a Prometheus that cannot be reached is said, never a figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from codexops import localenv
from codexops.prometheus_http import PrometheusError, labels_at, series, value_at
from infra import canary_queries as q
from infra.spec import SpecError, available_stacks, load_spec

Status = Literal["compared", "not enough traffic", "unavailable"]
SERIES_WINDOW = "30s"  # the p95 series' rate window: six local scrapes, two at the default 15 s
SERIES_STEP = 5.0
FIGURES = ("requests", "rps", "p50_ms", "p95_ms", "p99_ms")  # compared relatively; error rate in points


@dataclass(frozen=True)
class Window:
    start: float  # unix seconds
    end: float

    @property
    def seconds(self) -> int:
        return max(1, round(self.end - self.start))

    def as_dict(self) -> dict[str, Any]:
        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")

        return {"start": iso(self.start), "end": iso(self.end), "seconds": self.seconds}


@dataclass
class StackFigures:
    """One stack's figures over the window, from its Prometheus."""

    stack: str
    prometheus_url: str
    releases: list[str]  # what its replicas exported in the window (codex_build_info)
    requests: float
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None  # None: no request answered
    p95_series: list[tuple[float, float]] = field(default_factory=list)  # (unix seconds, ms)

    @property
    def release(self) -> str:
        return ", ".join(self.releases) or "unknown (no codex_build_info in the window)"


@dataclass
class Baseline:
    stack: str  # the stack the candidate would be promoted to
    status: Status
    note: str
    window: dict[str, Any]
    min_samples: int
    candidate: StackFigures | None = None
    serving: StackFigures | None = None
    difference: dict[str, float | None] = field(default_factory=dict)  # "<figure>_pct", "error_rate_points"


def destinations(stack: str) -> list[str]:
    """The stacks that take their releases from `stack` (their spec's promotion source)."""
    found = []
    for name in available_stacks():
        try:
            promotion = load_spec(name).promotion
        except SpecError:
            continue  # a stack file that does not load promotes nothing; its own commands say why
        if promotion is not None and promotion.source == stack and name != stack:
            found.append(name)
    return found


def serving_prometheus(destination: str, local: bool, given: str | None) -> str | None:
    """Where the destination's Prometheus answers: the one given, else the local stack's (local targets)."""
    if given:
        return given.rstrip("/")
    return localenv.local_stack(destination).prometheus_url() if local else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def measure(stack: str, url: str, window: Window) -> StackFigures:
    """The stack's figures over the window (every replica), and its p95 over time."""
    every, span, at = q.every_release(), f"{window.seconds}s", window.end
    requests = value_at(url, q.requests(every, span), at) or 0.0
    rate = value_at(url, q.error_rate(every, span), at)
    return StackFigures(
        stack=stack,
        prometheus_url=url,
        releases=labels_at(url, q.releases(span), "version", at),
        requests=round(requests, 1),
        rps=round(requests / window.seconds, 2),
        p50_ms=ms(value_at(url, q.latency_quantile(0.5, every, span), at)),
        p95_ms=ms(value_at(url, q.latency_quantile(0.95, every, span), at)),
        p99_ms=ms(value_at(url, q.latency_quantile(0.99, every, span), at)),
        error_rate=None if rate is None else round(rate, 5),
        p95_series=[
            (t, round(v * 1000, 1))
            for t, v in series(url, q.latency_quantile(0.95, every, SERIES_WINDOW), window.start, at, SERIES_STEP)
        ],
    )


def difference(candidate: StackFigures, serving: StackFigures) -> dict[str, float | None]:
    """The candidate relative to the serving release, in percent; the error rate in percentage points."""

    def pct(ours: float | None, theirs: float | None) -> float | None:
        return None if ours is None or not theirs else round((ours - theirs) / theirs * 100, 1)

    found = {f"{name}_pct": pct(getattr(candidate, name), getattr(serving, name)) for name in FIGURES}
    ours, theirs = candidate.error_rate, serving.error_rate
    found["error_rate_points"] = None if ours is None or theirs is None else round((ours - theirs) * 100, 3)
    return found


def compare(
    destination: str, candidate_url: str | None, serving_url: str | None, window: Window, candidate: str
) -> Baseline:
    """The candidate stack against `destination` over the window, or why there is no comparison."""
    min_samples = load_spec(destination).rollout.analysis.minSamples
    baseline = Baseline(destination, "unavailable", "", window.as_dict(), min_samples)
    missing = [
        f"no Prometheus known for {name} ({hint})"
        for name, url, hint in (
            (candidate, candidate_url, "give --prometheus-url"),
            (destination, serving_url, "give --baseline-prometheus-url or CODEX_BASELINE_PROMETHEUS_URL"),
        )
        if not url
    ]
    if missing:
        baseline.note = "; ".join(missing)
        return baseline
    assert candidate_url and serving_url
    try:
        baseline.candidate = measure(candidate, candidate_url, window)
        baseline.serving = measure(destination, serving_url, window)
    except PrometheusError as exc:
        baseline.note = f"could not read the figures: {exc}"
        return baseline
    quiet = [s for s in (baseline.candidate, baseline.serving) if s.requests < min_samples]
    if quiet:
        baseline.status = "not enough traffic"
        baseline.note = "; ".join(
            f"{s.stack}: not enough traffic ({s.requests:.0f} requests in {window.seconds} s, {min_samples} needed)"
            for s in quiet
        )
        return baseline
    baseline.status = "compared"
    baseline.difference = difference(baseline.candidate, baseline.serving)
    return baseline


def baselines(
    stack: str, candidate_url: str | None, window: Window, *, local: bool, serving_url: str | None = None
) -> list[Baseline]:
    """One baseline per stack that takes its releases from `stack`; none when no stack does."""
    return [
        compare(name, candidate_url, serving_prometheus(name, local, serving_url), window, stack)
        for name in destinations(stack)
    ]


def describe(stack: str, found: list[Baseline]) -> list[str]:
    """The gate's progress lines: one per baseline, its figures or why there are none."""
    if not found:
        return [f"==> baseline: no stack takes its releases from {stack} (living-codex:promotion)"]
    lines = []
    for b in found:
        lines.append(f"==> baseline: {stack} against {b.stack} (informational, not the verdict)")
        if b.status != "compared" or b.candidate is None or b.serving is None:
            lines.append(f"    {b.note}")
            continue
        for side in (b.candidate, b.serving):
            lines.append(
                f"    {side.stack} ({side.release}): {side.requests:.0f} requests, p95 {side.p95_ms} ms, "
                f"error rate {side.error_rate}"
            )
    return lines
