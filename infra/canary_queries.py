"""PromQL that compares a canary with the release serving beside it, one definition for every platform.

Each replica exports `codex_build_info{version=<release>}` (app/main.py); joining a series on `instance`
with that info metric labels it with the replica's release, so one Prometheus tells the canary's requests
from the baseline's whatever the platform: supervisord's replicas locally, pods under Argo Rollouts. The
selector is a PromQL label matcher on `version`, e.g. `version="r42"` (the canary) or `version!="r42"`
(the baseline); on Kubernetes the AnalysisTemplate passes the release as an argument.
"""

from __future__ import annotations

JOB = 'job="living-codex"'


def _by_release(series: str, selector: str) -> str:
    """The series, kept only for replicas whose build matches `selector` (info metrics are 1)."""
    return f"({series} * on(instance) group_left(version) codex_build_info{{{JOB},{selector}}})"


def requests(selector: str, window: str) -> str:
    """Requests the matching replicas answered in the window."""
    return f"sum({_by_release(f'increase(codex_http_requests_total{{{JOB}}}[{window}])', selector)}) or vector(0)"


def error_rate(selector: str, window: str) -> str:
    """5xx answers over all answers of the matching replicas (no request: no series, not 0)."""
    failed = _by_release(f'increase(codex_http_requests_total{{{JOB},status=~"5.."}}[{window}])', selector)
    every = _by_release(f"increase(codex_http_requests_total{{{JOB}}}[{window}])", selector)
    return f"(sum({failed}) or vector(0)) / sum({every})"


def latency_quantile(quantile: float, selector: str, window: str) -> str:
    """The quantile of the matching replicas' request latency, in seconds."""
    buckets = _by_release(f"rate(codex_http_request_latency_seconds_bucket{{{JOB}}}[{window}])", selector)
    return f"histogram_quantile({quantile}, sum by (le) ({buckets}))"


def releases(window: str) -> str:
    """One series per release a replica exported in the window (its `version` label)."""
    return f"group by (version) (max_over_time(codex_build_info{{{JOB}}}[{window}]))"


def every_release() -> str:
    """A selector for every replica, whatever it serves: a whole stack's figures (the gate's baseline)."""
    return 'version=~".+"'


def canary(release: str) -> str:
    return f'version="{release}"'


def baseline(release: str) -> str:
    return f'version!="{release}"'


def scraped(release: str) -> str:
    """How many replicas of `release` Prometheus scrapes: a canary serves its step once this is 1."""
    return f"count(codex_build_info{{{JOB},{canary(release)}}})"
