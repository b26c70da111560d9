"""The gate's report: Markdown ready for a GitHub step summary, and the latency chart."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from infra.spec import EnvironmentSpec

if TYPE_CHECKING:
    from codexops.gate import GateReport

ICON = {"PASS": "✅", "WARN": "⚠️", "FAIL": "❌", "INCONCLUSIVE": "❔"}
ICON.update({k.lower(): v for k, v in ICON.items()})


def latency_chart(history: Path, spec: EnvironmentSpec, out: Path) -> Path | None:
    """p50 and p95 over the run, against the warning and critical lines of the spec."""
    if not history.exists():
        return None
    times, p50, p95 = [], [], []
    with history.open() as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != "Aggregated" or row.get("95%") in (None, "", "N/A"):
                continue
            times.append(int(row["Timestamp"]))
            p50.append(float(row["50%"]))
            p95.append(float(row["95%"]))
    if not times:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [t - times[0] for t in times]
    figure, axes = plt.subplots(figsize=(9, 4))
    axes.plot(seconds, p50, label="p50")
    axes.plot(seconds, p95, label="p95")
    latency = spec.thresholds.p95LatencyMs
    axes.axhline(latency.warning, color="orange", linestyle="--", label=f"warning {latency.warning:g} ms")
    axes.axhline(latency.critical, color="red", linestyle="--", label=f"critical {latency.critical:g} ms")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("latency (ms)")
    axes.set_title(f"Latency under load, stack {spec.stack}")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


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
    if chart:
        lines += [f"![latency]({chart.name})", ""]
    lines += ["Files: report.json, junit.xml, locust.html, locust_stats.csv, latency.png, checklist.log", ""]
    return "\n".join(lines)
