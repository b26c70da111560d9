"""The scale curve's table and plot, from benchmarks/scale.py's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIDES = ("service", "asyncpg")


def scale_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (axis value, path): the service's and the anchor's figures side by side, in run order."""
    points: dict[tuple[str, int, str], dict[str, Any]] = {}
    for row in rows:
        axis, value = ("nodes", row["nodes"]) if row["nodes"] else ("replicas", row["replicas"])
        point = points.setdefault((axis, value, row["path"]), {"axis": axis, "value": value, "path": row["path"]})
        point[row["side"]] = row
    return list(points.values())


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    errors = row.get("errors", 0)
    return f"{row['rps']:,.0f} / {row['p95_ms']:.1f} ms" + (f" ({errors} errors)" if errors else "")


def _ratio(point: dict[str, Any]) -> str:
    mine, theirs = point.get("service"), point.get("asyncpg")
    return f"{mine['rps'] / theirs['rps']:.2f}" if mine and theirs and theirs["rps"] else "-"


def scale_table(rows: list[dict[str, Any]], seconds: float) -> list[str]:
    if not rows:
        return ["No scale curve in this run."]
    lines = [
        f"wrk as above but {seconds:g} s per point, one round. Replicas: the service's and the anchor's "
        "(the database and Redis stay one each); nodes: a type of exactly that many nodes, 2 replicas, "
        "reads cycling over up to 3,000 of its ids and lists over as many offsets. At 1,000 nodes the reads "
        "cycle over 1,000 ids, which a replica's cache (1,000 entries) can hold: there the service's reads are "
        "partly cache hits, not a database path.",
        "",
        "| point | path | service RPS / p95 | asyncpg RPS / p95 | RPS ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for point in scale_points(rows):
        label = f"{point['value']} replica{'s' if point['value'] != 1 else ''}"
        if point["axis"] == "nodes":
            label = f"{point['value']:,} nodes"
        lines.append(
            f"| {label} | {point['path']} | {_cell(point.get('service'))} | {_cell(point.get('asyncpg'))} | "
            f"{_ratio(point)} |"
        )
    return lines


def scale_chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = scale_points(rows)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for column, axis in enumerate(("replicas", "nodes")):
        for index, name in enumerate(dict.fromkeys(p["path"] for p in points if p["axis"] == axis)):
            series = [p for p in points if p["axis"] == axis and p["path"] == name]
            xs = [p["value"] for p in series]
            for side, style in zip(SIDES, ("-o", "--s"), strict=True):
                have = [(x, p[side]) for x, p in zip(xs, series, strict=True) if side in p]
                label = f"{name}, {side}"
                colour = f"C{index}"
                axes[0][column].plot(
                    [x for x, _ in have], [r["rps"] for _, r in have], style, color=colour, label=label
                )
                axes[1][column].plot([x for x, _ in have], [r["p95_ms"] for _, r in have], style, color=colour)
        axes[0][column].set_ylabel("requests per second")
        axes[1][column].set_ylabel("p95 latency, ms")
        axes[1][column].set_xlabel(axis)
        for row in axes:
            if axis == "nodes":
                row[column].set_xscale("log")
            row[column].set_xticks(sorted({p["value"] for p in points if p["axis"] == axis}))
        axes[0][column].legend(fontsize=7)
    fig.suptitle("Scale curve: service (solid) and asyncpg anchor (dashed), through the same nginx")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
