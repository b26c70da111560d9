"""RESULTS.md and results.png from one benchmark run's results.json: figures, ratios, targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.scale_report import scale_chart, scale_table
from benchmarks.wrk import COLD_NODES

STATIC, BARE = "nginx static return 200", "bare FastAPI (uvicorn[standard])"
ANCHOR_READ = "asyncpg node read"
ANCHOR_READ_CHECKED = "asyncpg node read + auth check (view not trusted)"
ANCHOR_LIST = "asyncpg list 20 by type"
ANCHOR_CREATE = "asyncpg create node"
WIRE = " + SQLAlchemy's round trips"  # the anchor's /wire/ routes (benchmarks/asyncpg_app.py)
ANCHORS: tuple[str, ...] = (STATIC, BARE, ANCHOR_READ, ANCHOR_READ_CHECKED, ANCHOR_LIST, ANCHOR_CREATE)
ANCHORS += tuple(name + WIRE for name in (ANCHOR_READ, ANCHOR_LIST, ANCHOR_CREATE))
# (path, service row, its anchor, the issue's RPS target as a share of the anchor; None: shown only)
PAIRS: tuple[tuple[str, str, str, float | None], ...] = (
    ("node read, uncached", "service node read, uncached", ANCHOR_READ, 0.7),
    ("list 20 by type, uncached", "service list 20 by type, uncached", ANCHOR_LIST, 0.7),
    ("create node", "service create node", ANCHOR_CREATE, 0.7),
    ("node read, cached", "service node read, cached", BARE, 0.9),
    ("node read, uncached, vs anchor + auth check", "service node read, uncached", ANCHOR_READ_CHECKED, None),
    ("node read, uncached, vs anchor + round trips", "service node read, uncached", ANCHOR_READ + WIRE, None),
    ("list 20 by type, vs anchor + round trips", "service list 20 by type, uncached", ANCHOR_LIST + WIRE, None),
    ("create node, vs anchor + round trips", "service create node", ANCHOR_CREATE + WIRE, None),
)
RSS_LIMIT_MB = 150


def _ratio(value: float, anchor: float) -> str:
    return f"{value / anchor:.2f}" if anchor else "-"


def _figures_table(rows: dict[str, dict[str, Any]], opened: dict[str, int]) -> list[str]:
    lines = [
        "| endpoint | RPS | p50 ms | p95 ms | p99 ms | errors | wrk CPU (cores) | machine busy | PostgreSQL "
        "connections opened |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['errors']} | {r['wrk_cpu']:.2f} | {r['machine_busy']:.0%} | {opened.get(name, '-')} |"
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


def anchor_ratios(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each service path against its anchor: RPS ratio (service / anchor) and latency ratios."""
    found = []
    for path, service, anchor, target in PAIRS:
        if service not in rows or anchor not in rows:
            continue
        s, a = rows[service], rows[anchor]
        if s.get("errors") or a.get("errors"):
            continue  # a side that answered errors measured something else: no ratio (the figures table shows them)
        ratios = {k: (s[k] / a[k] if a[k] else 0.0) for k in ("rps", "p50_ms", "p95_ms", "p99_ms")}
        found.append({"path": path, "service": service, "anchor": anchor, "target": target, **ratios})
    return found


def _anchor_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| path | service RPS | anchor | anchor RPS | RPS ratio | target "
        "| p50 ms (s / a) | p95 ms (s / a) | p99 ms (s / a) |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in anchor_ratios(rows):
        s, a = rows[r["service"]], rows[r["anchor"]]
        target = "-" if r["target"] is None else f"≥ {r['target']:.1f}: {_mark(r['rps'] >= r['target'])}"
        latency = [f"{s[k]:.1f} / {a[k]:.1f} ({r[k]:.1f}x)" for k in ("p50_ms", "p95_ms", "p99_ms")]
        lines.append(
            f"| {r['path']} | {s['rps']:,.0f} | {r['anchor']} | {a['rps']:,.0f} | {r['rps']:.2f} | {target} | "
            + " | ".join(latency)
            + " |"
        )
    return lines


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def issue_targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Issue 23's targets: (target, measured, met), from one run's figures."""
    rows = results["rows"]
    found = [
        (f"{r['path']} ≥ {r['target']:.1f} of {r['anchor']}", f"{r['rps']:.2f}", r["rps"] >= r["target"])
        for r in anchor_ratios(rows)
        if r["target"] is not None
    ]
    if "service create node" in rows and ANCHOR_CREATE in rows:
        mine, theirs = rows["service create node"]["p95_ms"], rows[ANCHOR_CREATE]["p95_ms"]
        found.append(("create p95 ≤ 2x its anchor's", f"{mine:.1f} ms vs {theirs:.1f} ms", mine <= 2 * theirs))
    after = results.get("rssAfterWrkMB", {})
    if after:
        listing = ", ".join(f"{n} {v:.0f} MB" for n, v in after.items())
        found.append(
            (f"RSS ≤ {RSS_LIMIT_MB} MB per replica after the benchmark", listing, max(after.values()) <= RSS_LIMIT_MB)
        )
    return found


def _targets(results: dict[str, Any]) -> list[str]:
    rows, paced, gate = results["rows"], results["paced"], results["gate"]
    bare = rows[BARE]["rps"]

    def share(name: str) -> float:
        return rows[name]["rps"] / bare if bare else 0.0

    live, health = share("service /health/live"), share("service /health")
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {name} | {measured} | {_mark(ok)} |" for name, measured, ok in issue_targets(results)]
    lines += [
        f"| node read p95 ≤ 25 ms at 70% of its max ({paced['targetRps']:,} RPS target, "
        f"{paced['rps']:,.0f} achieved) | {paced['p95_ms']:.1f} ms | {_mark(paced['p95_ms'] <= 25)} |",
        f"| /health/live ≥ 80% of bare | {live:.0%} | {_mark(live >= 0.8)} |",
        f"| /health ≥ 50% of bare | {health:.0%} | {_mark(health >= 0.5)} |",
    ]
    if gate:
        rss = [v["max"] for v in gate["rssMB"].values()]
        checklist = gate["steps"].get("checklist", 0.0)
        lines.append(
            f"| RSS ≤ {RSS_LIMIT_MB} MB per replica under the gate's load | max {max(rss or [0]):.0f} MB | "
            f"{_mark(bool(rss) and max(rss) <= RSS_LIMIT_MB)} |"
        )
        lines.append(f"| checklist < 10 s | {checklist} s | {_mark(0 < checklist < 10)} |")
    for stack, p in results["previews"].items():
        lines.append(
            f"| preview {stack} < 10 s | {p['seconds']} s (exit {p['exitCode']}) | {_mark(p['seconds'] < 10)} |"
        )
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
    colours = ["#888888" if n in ANCHORS else "#1f77b4" for n in names]
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


def _profile_section(profiles: dict[str, Any]) -> list[str]:
    if not profiles:
        return ["No profile in this run (py-spy could not attach to app-1)."]
    lines: list[str] = []
    for name, p in profiles.items():
        lines += [
            f"### {name} (py-spy, {p['seconds']:g} s of app-1 under wrk; flame graph: [{p['image']}]({p['image']}))",
            "",
            f"![flame graph of the {name}]({p['image']})",
            "",
            "| part (a sample goes to the innermost frame's part) | share of busy samples |",
            "|---|---:|",
            *(f"| {part} | {share:.0%} |" for part, share in p["parts"].items() if share >= 0.005),
            "",
            "| function (top by self time) | self | inclusive |",
            "|---|---:|---:|",
            *(f"| `{f}` | {own:.0%} | {total:.0%} |" for f, own, total in p["top"]),
            "",
        ]
    return lines


def _load(values: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in values)


def _header(results: dict[str, Any]) -> list[str]:
    machine, wrk, load = results["machine"], results["wrk"], results["loadAverage"]
    return [
        "# Benchmark results",
        "",
        f"Measured {results['date']} at commit {results.get('commit', '?')} with `{results['command']}` "
        "(benchmarks/run.py): wrk "
        f"`-t{wrk['threads']} -c{wrk['connections']} -d{wrk['seconds']:g}s` per endpoint after a 2 s warm-up, "
        f"{wrk['rounds']} rounds over all endpoints, each row the best of its rounds (the machine is shared), "
        "every endpoint through the same nginx (rendered from `infra/templates/nginx.conf.j2`), the service "
        "with 2 replicas against PostgreSQL and Redis (`codexops up`), the asyncpg anchor's 2 replicas against "
        "the same database.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memoryGB']} GB, {machine['os']}, "
        f"Python {machine['python']}, {machine['wrk']}. Load average (1, 5, 15 min) {_load(load['before'])} "
        f"before the run, {_load(load['afterWrk'])} after the endpoint rows, "
        f"{_load(load.get('afterScale', load['afterWrk']))} after the scale curve, {_load(load['end'])} at the end. "
        "wrk, nginx, the replicas, the anchors, PostgreSQL and Redis all share these cores.",
        "",
    ]


def _anchors_note() -> list[str]:
    return [
        f"The uncached reads cycle over {COLD_NODES:,} nodes, three times what a replica's cache holds, so every "
        "read goes to PostgreSQL; the uncached lists cycle over as many offsets (`?typeId=codex.note&limit=20"
        "&offset=N`, a page each, every page a cache miss). The cached list repeats one URL. Create posts a new "
        "node per request (type `bench.create`, so the lists by `codex.note` keep their size). The asyncpg anchor "
        "(benchmarks/asyncpg_app.py) verifies the same bearer token with PyJWT and runs the service's own "
        "statements (benchmarks/sql.py, checked against what the service issues by "
        "tests/integration/test_bench_anchor_sql.py) on one asyncpg pool per replica (20, the service's pool), "
        "orjson bodies; its `+ auth check` row adds the check the service makes when its auth view is not "
        "trusted: the account row from PostgreSQL, revocation and session from Redis. The service's view is "
        "trusted in these runs (Redis up), so its reads do that check from memory. Its `+ SQLAlchemy's round "
        "trips` rows add what SQLAlchemy sends around the same statements: the pool's pre-ping (an empty query) "
        "at every checkout. The nodes the creates and the scale curve write are removed at the end "
        "(benchmarks/dataset.py).",
    ]


def write_results(results: dict[str, Any], directory: Path, history: Path | None = None) -> None:
    """RESULTS.md, results.png and scale.png in `directory`; history.json and NOTES.md read from `history`."""
    history = history or directory
    chart(results, directory / "results.png")
    if results.get("scale"):
        scale_chart(results["scale"], directory / "scale.png")
    gate, previews, rows = results["gate"], results["previews"], results["rows"]
    static = rows[STATIC]
    busiest = max(r["wrk_cpu"] for name, r in rows.items() if name != STATIC)
    text = [
        *_header(results),
        "![RPS and p95 per endpoint](results.png)",
        "",
        "## Each service path against its anchor",
        "",
        *_anchor_table(rows),
        "",
        *_anchors_note(),
        "",
        "## Targets (reported, not asserted)",
        "",
        *_targets(results),
        "",
        "## Figures",
        "",
        *_figures_table(rows, results.get("connectionsOpened", {})),
        "",
        "## Ratios to the bare and static anchors",
        "",
        *_ratio_table(rows),
        "",
        "## Where the time goes",
        "",
        *_profile_section(results.get("profiles", {})),
        "## Scale curve",
        "",
        *scale_table(results.get("scale", []), results.get("scaleSeconds", 0)),
        "",
        *(["![RPS and p95 by replicas and by nodes](scale.png)", ""] if results.get("scale") else []),
        *_notes(history),
        "## The load generator is not the bottleneck",
        "",
        f"Against the static `return 200` wrk drove {static['rps']:,.0f} RPS using {static['wrk_cpu']:.2f} cores; "
        f"against the service and the anchors it used at most {busiest:.2f} cores for a fraction of that rate. "
        "Every row is limited by what answers, not by wrk.",
        "",
        *(_gate_section(results) if gate else []),
        *(f"- `codexops preview {s}`: {p['seconds']} s (exit {p['exitCode']})." for s, p in previews.items()),
        "",
        *_history(history),
    ]
    (directory / "RESULTS.md").write_text("\n".join(text))


def _notes(directory: Path) -> list[str]:
    """The closing note, kept by hand beside the generated figures (benchmarks/NOTES.md)."""
    path = directory / "NOTES.md"
    return [path.read_text().rstrip(), ""] if path.exists() else []


def _gate_section(results: dict[str, Any]) -> list[str]:
    gate = results["gate"]
    steps = ", ".join(f"{k} {v} s" for k, v in gate["steps"].items())
    figures = gate.get("load", {})
    rss = "; ".join(
        f"{n}: {v['before']} MB before, max {v['max']} MB, {v['after']} MB after" for n, v in gate["rssMB"].items()
    )
    return [
        "## The gate and the previews",
        "",
        f"- `codexops up` (already-running parts are reused): {results['setupSeconds']} s. The replicas are "
        "restarted before the gate, so it meets them as `make gate` does.",
        f"- `codexops gate --target local`: {gate['verdict']} in {gate['seconds']} s; {steps}. Load: "
        f"{figures.get('achieved_rps', '?')} RPS achieved after the ramp of {figures.get('target_rps', '?')} targeted "
        f"({figures.get('rps', '?')} over the whole run with the ramp), "
        f"p95 {figures.get('p95_ms', '?')} ms, error rate {figures.get('error_rate', 0):.2%}."
        + (" Reasons: " + "; ".join(gate["reasons"]) if gate.get("reasons") else ""),
        f"- RSS per replica under the gate's load: {rss}.",
    ]


if __name__ == "__main__":  # RESULTS.md again from a results.json (e.g. after NOTES.md changed)
    import sys

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    write_results(json.loads((folder / "results.json").read_text()), folder, history=Path(__file__).resolve().parent)
