"""The gate's report: Markdown ready for a GitHub step summary, and the latency chart."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from codexops.gate_baseline import Baseline, StackFigures
from infra.spec import EnvironmentSpec

if TYPE_CHECKING:
    from codexops.gate import GateReport

ICON = {"PASS": "✅", "WARN": "⚠️", "FAIL": "❌", "INCONCLUSIVE": "❔"}
ICON.update({k.lower(): v for k, v in ICON.items()})


Lines = dict[str, tuple[list[float], list[float]]]  # label: (seconds since the load's start, ms)


def latency_lines(history: Path, baselines: list[Baseline] | None = None) -> Lines:
    """Locust's p50 and p95 over the run; with a compared baseline, the candidate's and each serving
    release's p95 from their Prometheus, on the same clock. Empty when Locust recorded no history."""
    if not history.exists():
        return {}
    times, p50, p95 = [], [], []
    with history.open() as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != "Aggregated" or row.get("95%") in (None, "", "N/A"):
                continue
            times.append(int(row["Timestamp"]))
            p50.append(float(row["50%"]))
            p95.append(float(row["95%"]))
    if not times:
        return {}
    lines: Lines = {
        "p50 (load generator)": ([t - times[0] for t in times], p50),
        "p95 (load generator)": ([t - times[0] for t in times], p95),
    }
    for side in _compared_sides(baselines or []):
        points = side.p95_series
        lines[f"p95 {side.stack}, {side.release[:40]} (Prometheus)"] = (
            [t - times[0] for t, _ in points],
            [v for _, v in points],
        )
    return lines


def latency_chart(
    history: Path, spec: EnvironmentSpec, out: Path, baselines: list[Baseline] | None = None
) -> Path | None:
    """The latency lines against the warning and critical lines of the spec."""
    lines = latency_lines(history, baselines)
    if not lines:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4))
    for label, (seconds, values) in lines.items():
        axes.plot(seconds, values, label=label, linestyle=":" if "Prometheus" in label else "-")
    latency = spec.thresholds.p95LatencyMs
    axes.axhline(latency.warning, color="orange", linestyle="--", label=f"warning {latency.warning:g} ms")
    axes.axhline(latency.critical, color="red", linestyle="--", label=f"critical {latency.critical:g} ms")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("latency (ms)")
    axes.set_title(f"Latency under load, stack {spec.stack}")
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def _compared_sides(baselines: list[Baseline]) -> list[StackFigures]:
    """The candidate once, then each serving release, of the baselines that compared."""
    compared = [b for b in baselines if b.status == "compared" and b.candidate and b.serving]
    sides = [compared[0].candidate] if compared else []
    return [s for s in sides + [b.serving for b in compared] if s is not None]


def _release(report: GateReport) -> str:
    if report.release is None:
        return "none (this checkout's code, not a built release)"
    return f"{report.release['id']} ({report.release['digest']})"


def markdown(report: GateReport, spec: EnvironmentSpec, chart: Path | None) -> str:
    lines = [
        f"## Gate {ICON[report.verdict]} {report.verdict}: {report.target} (stack {report.stack})",
        "",
        f"Target {report.url}, started {report.started}.",
        "",
        f"Release {_release(report)}; spec {report.spec_digest}.",
        "",
        f"Load: shape {report.shape} at scale {report.scale:g}, target {report.target_rps:g} RPS"
        + (f", achieved {report.achieved_rps:g} RPS" if report.achieved_rps is not None else "")
        + ("" if report.shape == "gate" and report.scale == 1.0 else " (not the full gate: not promotion evidence)")
        + ".",
        "",
    ]
    reasons = report.reasons()
    if reasons:
        lines += ["### Why", "", *[f"- {r}" for r in reasons], ""]
    lines += ["### Steps", "", "| step | result | time | figures |", "|---|---|---|---|"]
    for step in report.steps:
        figures = ", ".join(f"{k}={v}" for k, v in step.figures.items())
        lines.append(f"| {step.name} | {ICON[step.status]} {step.status} | {step.seconds:.1f} s | {figures} |")
    t = spec.thresholds
    lines += [
        "",
        f"Thresholds (spec {spec.stack}): p95 {t.p95LatencyMs.warning:g}/{t.p95LatencyMs.critical:g} ms, "
        f"error rate {t.errorRate.warning:.0%}/{t.errorRate.critical:.0%} (warning/critical).",
        "",
    ]
    lines += baseline_markdown(report.stack, report.baselines)
    if chart:
        lines += [f"![latency]({chart.name})", ""]
    files = [
        "report.json",
        "junit.xml",
        "locust.html",
        "locust_stats.csv",
        *([chart.name] if chart else []),
        "checklist.log",
    ]
    lines += [f"Files: {', '.join(files)}", ""]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "no data" if value is None else f"{value:g} ms"


def _rate(value: float | None) -> str:
    return "no request" if value is None else f"{value:.2%}"


def _signed(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:+g}{unit}"


def _table(b: Baseline, candidate: StackFigures, serving: StackFigures) -> list[str]:
    d = b.difference
    rows = [
        ("release", candidate.release, serving.release, ""),
        ("requests", f"{candidate.requests:.0f}", f"{serving.requests:.0f}", _signed(d.get("requests_pct"), "%")),
        ("RPS", f"{candidate.rps:g}", f"{serving.rps:g}", _signed(d.get("rps_pct"), "%")),
        *[
            (
                name,
                _ms(getattr(candidate, f"{name}_ms")),
                _ms(getattr(serving, f"{name}_ms")),
                _signed(d.get(f"{name}_ms_pct"), "%"),
            )
            for name in ("p50", "p95", "p99")
        ],
        (
            "error rate",
            _rate(candidate.error_rate),
            _rate(serving.error_rate),
            _signed(d.get("error_rate_points"), " pp"),
        ),
    ]
    header = f"| | candidate ({candidate.stack}) | serving {serving.stack} | difference |"
    return [header, "|---|---|---|---|", *[f"| {' | '.join(row)} |" for row in rows]]


def baseline_markdown(stack: str, baselines: list[Baseline]) -> list[str]:
    """The baseline section: each stack the candidate would be promoted to, side by side, or why not."""
    if not baselines:
        return []
    lines = [
        "### Baseline: the candidate against the release serving where it would be promoted",
        "",
        "Informational: it does not change the verdict (the canary steps judge regressions at promotion). "
        "Server-side figures from each stack's Prometheus, every replica, over the load's window; "
        "differences relative to the serving release (error rate in percentage points).",
        "",
    ]
    for b in baselines:
        window = f"{b.window['seconds']} s from {b.window['start']}"
        if b.status == "compared" and b.candidate and b.serving:
            lines += [f"{stack} against {b.stack}, {window}:", "", *_table(b, b.candidate, b.serving), ""]
        else:
            served = [f"{side.stack} served {side.release}" for side in (b.candidate, b.serving) if side]
            lines += [f"{stack} against {b.stack}: {b.note}." + (f" ({'; '.join(served)})" if served else ""), ""]
    return lines
