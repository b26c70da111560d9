"""RESULTS.md and results.png from one benchmark run's results.json: figures, ratios, targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.wrk import COLD_NODES

STATIC, BARE = "nginx static return 200", "bare FastAPI (uvicorn[standard])"


def _ratio(value: float, anchor: float) -> str:
    return f"{value / anchor:.2f}" if anchor else "-"


def _figures_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| endpoint | RPS | p50 ms | p95 ms | p99 ms | errors | wrk CPU (cores) | machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['errors']} | {r['wrk_cpu']:.2f} | {r['machine_busy']:.0%} |"
        )
    return lines


def _ratio_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    bare, static = rows[BARE], rows[STATIC]
    lines = [
        "| endpoint | RPS / bare | RPS / static | p50 / bare | p95 / bare | p99 / bare "
        "| p50 / static | p95 / static | p99 / static |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        cells = [_ratio(r["rps"], bare["rps"]), _ratio(r["rps"], static["rps"])]
        cells += [_ratio(r[k], bare[k]) for k in ("p50_ms", "p95_ms", "p99_ms")]
        cells += [_ratio(r[k], static[k]) for k in ("p50_ms", "p95_ms", "p99_ms")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _targets(results: dict[str, Any]) -> list[str]:
    rows, paced, gate = results["rows"], results["paced"], results["gate"]
    bare = rows[BARE]["rps"]

    def share(name: str) -> float:
        return rows[name]["rps"] / bare if bare else 0.0

    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    node, live, health = share("service node read, cached"), share("service /health/live"), share("service /health")
    rss = [v["max"] for v in gate["rssMB"].values()]
    checklist = gate["steps"].get("checklist", 0.0)
    lines = [
        "| target | measured | |",
        "|---|---|---|",
        f"| node read (cached) ≥ 60% of bare | {node:.0%} | {mark(node >= 0.6)} |",
        f"| node read p95 ≤ 25 ms at 70% of its max ({paced['targetRps']:,} RPS target, "
        f"{paced['rps']:,.0f} achieved) | {paced['p95_ms']:.1f} ms | {mark(paced['p95_ms'] <= 25)} |",
        f"| /health/live ≥ 80% of bare | {live:.0%} | {mark(live >= 0.8)} |",
        f"| /health ≥ 50% of bare | {health:.0%} | {mark(health >= 0.5)} |",
        f"| RSS ≤ 150 MB per replica under the gate's load | max {max(rss or [0]):.0f} MB | "
        f"{mark(bool(rss) and max(rss) <= 150)} |",
    ]
    for stack, p in results["previews"].items():
        lines.append(
            f"| preview {stack} < 10 s | {p['seconds']} s (exit {p['exitCode']}) | {mark(p['seconds'] < 10)} |"
        )
    lines.append(f"| checklist < 10 s | {checklist} s | {mark(0 < checklist < 10)} |")
    return lines


def _history(directory: Path) -> list[str]:
    """Earlier runs, one change at a time (benchmarks/history.json, kept by hand from real runs)."""
    path = directory / "history.json"
    if not path.exists():
        return []
    lines = ["## Step by step (earlier runs)", ""]
    for series in json.loads(path.read_text())["series"]:
        lines += [*_series_table(series), ""]
    return [*lines, "Each cell: RPS / p95, or RPS alone where only that was recorded.", ""]


def _series_table(series: dict[str, Any]) -> list[str]:
    names = list(dict.fromkeys(n for step in series["steps"] for n in step["rows"]))
    lines = [series["note"], "", "| change | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for step in series["steps"]:
        cells = [_cell(step["rows"].get(n)) for n in names]
        lines.append(f"| {step['change']} | " + " | ".join(cells) + " |")
    return lines


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    return f"{row['rps']:,} / {row['p95_ms']} ms" if "p95_ms" in row else f"{row['rps']:,}"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    names = list(rows)
    colours = ["#888888" if n in (STATIC, BARE) else "#1f77b4" for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    left.barh(names, [rows[n]["rps"] for n in names], color=colours)
    left.set_xscale("log")
    left.set_xlabel("requests per second (log scale)")
    left.invert_yaxis()
    right.barh(names, [rows[n]["p95_ms"] for n in names], color=colours)
    right.set_xlabel("p95 latency, ms")
    right.invert_yaxis()
    right.set_yticklabels([])
    fig.suptitle(f"Living Codex through nginx, 2 replicas; anchors in grey ({results['date']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(results: dict[str, Any], directory: Path) -> None:
    chart(results, directory / "results.png")
    machine, wrk, gate = results["machine"], results["wrk"], results["gate"]
    load, previews = results["loadAverage"], results["previews"]
    rows = results["rows"]
    static = rows[STATIC]
    busiest = max(r["wrk_cpu"] for name, r in rows.items() if name != STATIC)
    steps = ", ".join(f"{k} {v} s" for k, v in gate["steps"].items())
    figures = gate.get("load", {})
    rss = "; ".join(
        f"{n}: {v['before']} MB before, max {v['max']} MB, {v['after']} MB after" for n, v in gate["rssMB"].items()
    )
    text = [
        "# Benchmark results",
        "",
        f"Measured {results['date']} at commit {results.get('commit', '?')} with `{results['command']}` "
        "(benchmarks/run.py): wrk "
        f"`-t{wrk['threads']} -c{wrk['connections']} -d{wrk['seconds']:g}s` per endpoint after a 2 s warm-up, "
        f"{wrk['rounds']} rounds over all endpoints, each row the best of its rounds (the machine is shared), "
        "every endpoint through the same nginx (rendered from `infra/templates/nginx.conf.j2`), the service "
        "with 2 replicas against PostgreSQL and Redis (`codexops up`).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memoryGB']} GB, {machine['os']}, "
        f"Python {machine['python']}, {machine['wrk']}. Shared with other engineers: load average "
        f"(1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load['before'])} before the run, "
        f"{', '.join(f'{x:.2f}' for x in load['afterWrk'])} after the wrk runs, "
        f"{', '.join(f'{x:.2f}' for x in load['end'])} at the end. wrk, nginx, the replicas, PostgreSQL and "
        "Redis all share these cores.",
        "",
        "![RPS and p95 per endpoint](results.png)",
        "",
        "## Figures",
        "",
        *_figures_table(rows),
        "",
        "## Ratios to the anchors",
        "",
        *_ratio_table(rows),
        "",
        "## Targets (reported, not asserted)",
        "",
        *_targets(results),
        "",
        "## The load generator is not the bottleneck",
        "",
        f"Against the static `return 200` wrk drove {static['rps']:,.0f} RPS using {static['wrk_cpu']:.2f} cores; "
        f"against the service and bare FastAPI it used at most {busiest:.2f} cores for a fraction of that rate. "
        "Every row is limited by what answers, not by wrk: wrk can generate the static ceiling's rate, "
        "so any row below it is the server side's limit.",
        "",
        "## The gate and the previews",
        "",
        f"- `codexops up` (already-running parts are reused): {results['setupSeconds']} s."
        + (
            " The replicas are restarted before the gate, so it meets them as `make gate` does."
            if gate.get("freshReplicas")
            else " The gate ran right after the wrk runs, on the replicas they had warmed up."
        ),
        f"- `codexops gate --target local`: {gate['verdict']} in {gate['seconds']} s; {steps}. Load: "
        f"{figures.get('achieved_rps', '?')} RPS achieved after the ramp of {figures.get('target_rps', '?')} targeted "
        f"({figures.get('rps', '?')} over the whole run with the ramp), "
        f"p95 {figures.get('p95_ms', '?')} ms, error rate {figures.get('error_rate', 0):.2%}."
        + (" Reasons: " + "; ".join(gate["reasons"]) if gate.get("reasons") else ""),
        f"- RSS per replica under the gate's load: {rss}.",
        *(f"- `codexops preview {s}`: {p['seconds']} s (exit {p['exitCode']})." for s, p in previews.items()),
        "",
        f"The node read uncached cycles over {COLD_NODES:,} nodes, three times what a replica's cache holds, "
        "so every read goes to PostgreSQL. Create posts a new node per request. The paced run spreads "
        "requests over per-thread send slots (wrk's Lua `delay`), holding the rate below the maximum.",
        "",
        *_history(directory),
    ]
    (directory / "RESULTS.md").write_text("\n".join(text))
