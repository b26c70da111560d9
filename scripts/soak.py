"""Soak the local environment: the gate's Locust load for N minutes (optionally with attack traffic
alongside), sampling each replica's RSS and leak verdict, and p95 over time.

Run it under the shared-port lock, with the local environment up:
    flock /work/localenv.lock bash -c '.venv/bin/codexops up && .venv/bin/python scripts/soak.py --minutes 10; \
        .venv/bin/codexops down'
Writes reports/soak-<time>/soak.json, soak.md and soak.png; exit 1 when the leak detector or the
RSS trend of the second half says a replica grows.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import string
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codexops import gate, localenv
from codexops.targets import resolve_target
from infra.spec import ROOT
from loadtests.shapes import duration

GROWTH_MB_PER_MIN = 1.0  # a second-half RSS slope above this is growth, not warm-up


@dataclass
class Samples:
    rows: list[dict[str, Any]] = field(default_factory=list)
    attacks: int = 0

    def rss(self, port: int) -> list[tuple[float, float]]:
        return [(r["t"], r[f"rss_{port}"]) for r in self.rows if f"rss_{port}" in r]


def sample(samples: Samples, ports: tuple[int, ...], began: float, stop: threading.Event, interval: float) -> None:
    while not stop.is_set():
        row: dict[str, Any] = {"t": round(time.monotonic() - began, 1)}
        for port in ports:
            try:
                memory = httpx.get(f"http://{localenv.HOST}:{port}/health/memory", timeout=5).json()
                row[f"rss_{port}"] = memory["memoryUsage"]["rssMB"]
                row[f"leak_{port}"] = memory["memoryLeaks"]
            except (httpx.HTTPError, KeyError, ValueError):
                pass
        samples.rows.append(row)
        stop.wait(interval)


def attack(samples: Samples, stop: threading.Event, token: str) -> None:
    """What an attacker sends at a few requests a second: forged tokens, unknown hosts, made-up
    methods, hostile searches, oversized bodies, floods of AI jobs."""
    rng = random.Random(7)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=localenv.gateway_url(), headers=auth, timeout=10) as client:
        while not stop.is_set():
            kind = samples.attacks % 6
            word = "".join(rng.choices(string.ascii_uppercase, k=8))
            try:
                if kind == 0:
                    client.get("/api/nodes", headers={"Authorization": f"Bearer x.{word}.y"})
                elif kind == 1:
                    client.get("/metrics", headers={"Host": f"{word.lower()}.example"})
                elif kind == 2:
                    client.request(word, "/api/nodes")
                elif kind == 3:
                    client.get("/api/nodes", params={"q": f"'; DROP {word} --"})
                elif kind == 4:
                    client.post("/api/nodes", content=b"x" * (1024 * 1024 + 10))
                else:
                    client.post("/api/ai/extract", json={"text": f"{word} " * 200})
            except httpx.HTTPError:
                pass
            samples.attacks += 1
            stop.wait(0.05)


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    n = len(points)
    mean_t, mean_y = sum(t for t, _ in points) / n, sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 60 * sum((t - mean_t) * (y - mean_y) for t, y in points) / var if var else 0.0


def p95_over_time(history: Path) -> list[tuple[int, float]]:
    if not history.exists():
        return []
    with history.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"] == "Aggregated" and r["95%"] not in ("", "N/A")]
    if not rows:
        return []
    start = int(rows[0]["Timestamp"])
    return [(int(r["Timestamp"]) - start, float(r["95%"])) for r in rows]


def chart(samples: Samples, ports: tuple[int, ...], p95: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, latency) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for port in ports:
        points = samples.rss(port)
        memory.plot([t for t, _ in points], [y for _, y in points], label=f"replica :{port}")
    memory.set_ylabel("RSS (MB)")
    memory.legend()
    latency.plot([t for t, _ in p95], [y for _, y in p95], color="tab:red")
    latency.set_ylabel("p95 (ms)")
    latency.set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=10, help="seconds between RSS samples")
    parser.add_argument("--attack", action="store_true", help="attack traffic alongside the load")
    args = parser.parse_args()
    stack = localenv.local_stack()
    if not all(localenv.healthy(process) for process in stack.processes):
        print("the local environment is not up: run `codexops up` first (under the shared-port lock)")
        return 2
    ports = stack.ports.apps
    out = ROOT / "reports" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    target = resolve_target("local")
    token = httpx.post(
        f"{target.url}/api/auth/login",
        json={"username": "admin", "password": target.admin_password},
        timeout=10,
    ).json()["accessToken"]

    samples, stop, began = Samples(), threading.Event(), time.monotonic()
    threads = [threading.Thread(target=sample, args=(samples, ports, began, stop, args.interval), daemon=True)]
    if args.attack:
        threads.append(threading.Thread(target=attack, args=(samples, stop, token), daemon=True))
    for thread in threads:
        thread.start()
    scale = args.minutes * 60 / duration("soak", target.spec.load)
    target_file = target.save(out / "target.json")
    try:
        step = gate.run_load(target, target_file, "soak", scale, out)
    finally:
        target_file.unlink()  # it carries the admin password
    stop.set()
    for thread in threads:
        thread.join(timeout=15)

    p95 = p95_over_time(out / "locust_stats_history.csv")
    replicas: dict[str, dict[str, Any]] = {}
    for port in ports:
        points = samples.rss(port)
        second_half = [p for p in points if p[0] >= points[-1][0] / 2] if points else []
        last_leak: dict[str, Any] = next((r[f"leak_{port}"] for r in reversed(samples.rows) if f"leak_{port}" in r), {})
        replicas[str(port)] = {
            "rss_start_mb": points[0][1] if points else None,
            "rss_max_mb": max(y for _, y in points) if points else None,
            "rss_end_mb": points[-1][1] if points else None,
            "second_half_slope_mb_per_min": round(slope_mb_per_min(second_half), 2),
            "leak_detector": last_leak,
        }
    growing = [
        port
        for port, r in replicas.items()
        if r["second_half_slope_mb_per_min"] > GROWTH_MB_PER_MIN or r["leak_detector"].get("detected")
    ]
    report = {
        "minutes": args.minutes,
        "attack_requests": samples.attacks,
        "load": step.figures,
        "load_status": step.status,
        "p95_over_time_ms": p95,
        "replicas": replicas,
        "verdict": f"growth on {', '.join(growing)}" if growing else "no growth",
        "samples": samples.rows,
    }
    (out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Soak: {args.minutes:g} min{' with attack traffic' if args.attack else ''}",
        "",
        f"Load: {step.figures}. Attack requests: {samples.attacks}. Verdict: **{report['verdict']}**.",
        "",
        "| replica | RSS start MB | max MB | end MB | 2nd-half slope MB/min | leak detector |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in replicas.items():
        leak = r["leak_detector"]
        lines.append(
            f"| :{name} | {r['rss_start_mb']} | {r['rss_max_mb']} | {r['rss_end_mb']} | "
            f"{r['second_half_slope_mb_per_min']} | detected={leak.get('detected')} "
            f"growth={leak.get('growthRateMBPerMinute')} |"
        )
    (out / "soak.md").write_text("\n".join(lines) + "\n")
    chart(samples, ports, p95, out / "soak.png")
    print("\n".join(lines))
    print(f"report: {out}")
    return 1 if growing else 0


if __name__ == "__main__":
    sys.exit(main())
