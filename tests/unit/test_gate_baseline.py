"""The full gate's baseline on real Prometheus servers holding known samples: staging's candidate (r2)
against production's serving release (r1), side by side; a quiet production is "not enough traffic"; a
missing or silent Prometheus is said, never a figure; the report, the chart and the attestation carry it."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from codexops import localenv
from codexops.gate import GateReport, Step, write_report
from codexops.gate_baseline import Window, compare, describe, destinations, serving_prometheus
from codexops.gate_report import baseline_markdown, latency_chart, latency_lines
from codexops.releases import attestation
from infra.spec import load_spec
from tests.support.prometheus import Family, prometheus_with

END = (int(time.time()) // 300) * 300 - 3600  # an hour ago: inside the retention, before the head block
STEP = 5
BUSY = Window(END - 60, END)  # both stacks serve here
QUIET = Window(END - 150, END - 90)  # production answered 1 request per replica every 5 s here
BUCKETS = ("0.01", "0.025", "0.05", "0.1", "+Inf")
MIN_SAMPLES = load_spec("production").rollout.analysis.minSamples


def replica(instance: str, release: str, ok: list[int], failed: list[int], bucket: str) -> list[Family]:
    """One replica's series from END-180 to END, every STEP seconds: `ok` and `failed` answers per step
    (one figure per step), each observed in the latency bucket whose upper bound is `bucket`."""
    times = [END - 180 + STEP * i for i in range(len(ok))]
    labels = f'job="living-codex",instance="{instance}",method="GET",route="/api/nodes"'

    def running(per_step: list[int]) -> list[tuple[float, float]]:
        return [(t, float(sum(per_step[: i + 1]))) for i, t in enumerate(times)]

    answered = [a + b for a, b in zip(ok, failed, strict=True)]
    upper = BUCKETS.index(bucket)
    buckets = [
        (
            f'codex_http_request_latency_seconds_bucket{{{labels},le="{le}"}}',
            running(answered if i >= upper else [0] * len(ok)),
        )
        for i, le in enumerate(BUCKETS)
    ]
    return [
        ("codex_build", "gauge", [(f'codex_build_info{{job="living-codex",instance="{instance}",version="{release}"}}', [(t, 1.0) for t in times])]),
        ("codex_http_requests", "counter", [
            (f'codex_http_requests_total{{{labels},status="200"}}', running(ok)),
            (f'codex_http_requests_total{{{labels},status="503"}}', running(failed)),
        ]),
        ("codex_http_request_latency_seconds", "histogram", buckets),
    ]  # fmt: skip


def merged(replicas: list[list[Family]]) -> list[Family]:
    """One family per metric across the replicas (OpenMetrics groups a family's series together)."""
    families: dict[str, Family] = {}
    for families_of_one in replicas:
        for name, kind, series in families_of_one:
            families.setdefault(name, (name, kind, []))[2].extend(series)
    return list(families.values())


STEPS = 180 // STEP + 1
# staging: two replicas of r2, 49 answers and 1 failure each per step, all between 25 and 50 ms.
STAGING = merged([replica(i, "r2", [49] * STEPS, [1] * STEPS, "0.05") for i in ("a:1", "b:1")])
# production: three replicas of r1, quiet (1 answer per step) until END-60, then 20 per step, 10-25 ms.
BUSY_FROM = int(BUSY.start - (END - 180)) // STEP
PRODUCTION = merged(
    [
        replica(i, "r1", [1] * BUSY_FROM + [20] * (STEPS - BUSY_FROM), [0] * STEPS, "0.025")
        for i in ("c:1", "d:1", "e:1")
    ]
)


@pytest.fixture(scope="module")
def urls() -> Iterator[tuple[str, str]]:
    with prometheus_with(STAGING) as staging, prometheus_with(PRODUCTION) as production:
        yield staging, production


def quantile(q: float, lower: float, upper: float) -> float:
    """histogram_quantile's linear interpolation inside the one bucket every observation fell in, in ms."""
    return (lower + (upper - lower) * q) * 1000


def test_the_candidate_and_the_serving_release_side_by_side(urls: tuple[str, str]) -> None:
    baseline = compare("production", urls[0], urls[1], BUSY, "staging")
    assert baseline.status == "compared", baseline.note
    candidate, serving = baseline.candidate, baseline.serving
    assert candidate is not None and serving is not None
    assert (candidate.releases, serving.releases) == (["r2"], ["r1"])
    assert (candidate.requests, serving.requests) == (2 * 12 * 50, 3 * 12 * 20)
    assert (candidate.rps, serving.rps) == (20.0, 12.0)
    assert candidate.error_rate == pytest.approx(0.02) and serving.error_rate == 0.0
    assert candidate.p95_ms == pytest.approx(quantile(0.95, 0.025, 0.05), abs=0.06)
    assert serving.p50_ms == pytest.approx(quantile(0.5, 0.01, 0.025), abs=0.06)
    assert serving.p99_ms == pytest.approx(quantile(0.99, 0.01, 0.025), abs=0.06)
    d = baseline.difference
    assert d["requests_pct"] == pytest.approx(100 * (1200 - 720) / 720, abs=0.1)
    # Relative to the figures the report shows (ms to 0.1), so the table's columns and difference agree.
    assert d["p95_ms_pct"] == pytest.approx(100 * (candidate.p95_ms - serving.p95_ms) / serving.p95_ms, abs=0.05)  # type: ignore[operator]
    assert 100 < d["p95_ms_pct"] < 103  # type: ignore[operator]  # 48.75 ms against 24.25 ms
    assert d["error_rate_points"] == pytest.approx(2.0)
    assert len(serving.p95_series) == 13  # every 5 s of the 60 s window, ends included
    assert all(v == pytest.approx(quantile(0.95, 0.01, 0.025), abs=0.06) for _, v in serving.p95_series)


def test_a_quiet_production_is_not_enough_traffic_not_a_comparison(urls: tuple[str, str]) -> None:
    baseline = compare("production", urls[0], urls[1], QUIET, "staging")
    assert baseline.status == "not enough traffic" and baseline.difference == {}
    assert baseline.serving is not None and baseline.serving.requests == 3 * 12 < MIN_SAMPLES
    assert f"production: not enough traffic (36 requests in 60 s, {MIN_SAMPLES} needed)" == baseline.note
    section = "\n".join(baseline_markdown("staging", [baseline]))
    assert baseline.note in section and "| p95 |" not in section
    assert "(staging served r2; production served r1)" in section  # who, even without a comparison


@pytest.mark.parametrize(
    ("candidate", "serving", "said"),
    [
        ("staging", None, "no Prometheus known for production (give --baseline-prometheus-url"),
        (None, "production", "no Prometheus known for staging (give --prometheus-url)"),
        ("staging", "http://127.0.0.1:9", "could not read the figures: http://127.0.0.1:9 did not answer"),
    ],
)
def test_without_a_prometheus_it_is_said_never_a_figure(
    urls: tuple[str, str], candidate: str | None, serving: str | None, said: str
) -> None:
    given = {"staging": urls[0], "production": urls[1]}
    baseline = compare("production", given.get(candidate or ""), given.get(serving or "", serving), BUSY, "staging")
    assert baseline.status == "unavailable" and said in baseline.note
    assert baseline.difference == {} and (baseline.candidate is None or baseline.serving is None)
    assert f"staging against production: {baseline.note}." in "\n".join(baseline_markdown("staging", [baseline]))


def test_the_report_shows_both_side_by_side(urls: tuple[str, str]) -> None:
    baseline = compare("production", urls[0], urls[1], BUSY, "staging")
    c, s, d = baseline.candidate, baseline.serving, baseline.difference
    assert c is not None and s is not None
    section = baseline_markdown("staging", [baseline])
    assert "| | candidate (staging) | serving production | difference |" in section
    assert "| release | r2 | r1 |  |" in section
    assert f"| p95 | {c.p95_ms:g} ms | {s.p95_ms:g} ms | {d['p95_ms_pct']:+g}% |" in section
    assert "| error rate | 2.00% | 0.00% | +2 pp |" in section
    assert any(line.startswith("Informational") for line in section)


def locust_history(path: Path, window: Window) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "Name", "50%", "95%"])
        for t in range(int(window.start) + 5, int(window.end) + 1, 5):
            writer.writerow([t, "Aggregated", 30, 52])
    return path


def test_the_chart_draws_both_p95_series_on_the_loads_clock(urls: tuple[str, str], tmp_path: Path) -> None:
    baseline = compare("production", urls[0], urls[1], BUSY, "staging")
    history = locust_history(tmp_path / "locust_stats_history.csv", BUSY)
    lines = latency_lines(history, [baseline])
    candidate, serving = lines["p95 staging, r2 (Prometheus)"], lines["p95 production, r1 (Prometheus)"]
    assert candidate[0][0] == -5 and serving[0][-1] == 55  # Prometheus' window opens 5 s before Locust's first row
    assert max(serving[1]) < min(candidate[1])
    quiet = compare("production", urls[0], urls[1], QUIET, "staging")
    assert list(latency_lines(history, [quiet])) == ["p50 (load generator)", "p95 (load generator)"]
    chart = latency_chart(history, load_spec("staging"), tmp_path / "latency.png", [baseline])
    assert chart is not None and chart.read_bytes().startswith(b"\x89PNG")


def test_the_attestation_carries_the_baseline_figures(urls: tuple[str, str], tmp_path: Path) -> None:
    baseline = compare("production", urls[0], urls[1], BUSY, "staging")
    load = Step("load", "pass", 45.0, [], {"requests": 6000, "p95_ms": 52.0})
    release = {"id": "r2", "digest": "sha256:" + "0" * 64}
    report = GateReport("staging", "staging", "http://127.0.0.1:5002", "t", "PASS", [load], str(tmp_path), release)
    report.shape, report.baselines = "gate", [baseline]
    write_report(report, load_spec("staging"), tmp_path)
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["verdict"] == "PASS" and len(written["baselines"][0]["serving"]["p95_series"]) == 13
    assert "| p95 |" in (tmp_path / "report.md").read_text()
    body = attestation.predicate(tmp_path / "report.json", datetime.now(UTC))
    (signed,) = body["baselines"]
    assert signed["status"] == "compared" and signed["serving"]["p95_ms"] == baseline.serving.p95_ms  # type: ignore[union-attr]
    assert "p95_series" not in signed["serving"] and signed["difference"] == baseline.difference


def test_the_baseline_is_the_stack_whose_promotion_source_is_the_gated_one() -> None:
    promoted_from_staging = destinations("staging")
    assert "production" in promoted_from_staging and "staging" not in promoted_from_staging
    assert all(load_spec(name).promotion.source == "staging" for name in promoted_from_staging)  # type: ignore[union-attr]
    assert destinations("production") == []  # nothing takes its releases from production


def test_a_local_stacks_prometheus_is_known_a_remote_one_is_given() -> None:
    assert serving_prometheus("production", True, None) == localenv.local_stack("production").prometheus_url()
    assert serving_prometheus("production", False, None) is None
    assert serving_prometheus("production", False, "http://prom:9090/") == "http://prom:9090"


def test_no_destination_means_no_baseline_section_and_says_so() -> None:
    assert baseline_markdown("production", []) == []
    assert describe("production", []) == [
        "==> baseline: no stack takes its releases from production (living-codex:promotion)"
    ]


@pytest.mark.parametrize(("shape", "charted"), [("gate", True), ("soak", True), ("smoke", False)])
def test_every_report_but_a_smokes_has_its_latency_chart(tmp_path: Path, shape: str, charted: bool) -> None:
    locust_history(tmp_path / "locust_stats_history.csv", BUSY)
    load = Step("load", "pass", 10.0, [], {"requests": 300, "p95_ms": 52.0})
    report = GateReport("staging", "staging", "http://127.0.0.1:5002", "t", "PASS", [load], str(tmp_path))
    report.shape = shape
    write_report(report, load_spec("staging"), tmp_path)
    assert (tmp_path / "latency.png").exists() is charted
    assert ("latency.png" in (tmp_path / "report.md").read_text()) is charted
