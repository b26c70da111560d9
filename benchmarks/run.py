"""`make bench`: the service against its anchors, side by side in one run, through one nginx.

Brings the local environment up (2 replicas, PostgreSQL, Redis), starts two bare FastAPI replicas
and a benchmark nginx rendered from the project's template, then runs wrk against: a static
`return 200`, bare FastAPI, and the service's /health/live, node read (cached, uncached), list,
create and /health; then the node read paced at 70% of its maximum; then the gate with RSS sampled
per replica, and both previews. Writes benchmarks/results.json, RESULTS.md and results.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.extras import gate_under_load, previews
from benchmarks.gateway import HOST, Ports
from benchmarks.report import write_results
from benchmarks.stack import anchors_and_gateway
from benchmarks.wrk import COLD_NODES, COLD_PREFIX, WrkResult, run_wrk
from codexops import localenv
from infra.spec import load_spec

HERE = Path(__file__).resolve().parent
NODE_ID = "bench.node"


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memoryGB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "wrk": wrk[0] if wrk else "wrk",
    }


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=HERE
    )
    return head.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def _prepare(gateway: str) -> tuple[str, str]:
    """An admin token and the benchmark node's JSON (created once, read through the gateway)."""
    password = localenv.local_secrets()["ADMIN_PASSWORD"]
    with httpx.Client(base_url=gateway, timeout=10) as client:
        login = client.post("/api/auth/login", json={"username": "admin", "password": password})
        login.raise_for_status()
        token = login.json()["accessToken"]
        auth = {"Authorization": f"Bearer {token}"}
        node = {
            "id": NODE_ID,
            "typeId": "codex.note",
            "title": "Benchmark node",
            "content": "Redis sessions survive outages; PostgreSQL keeps nodes and edges.",
            "meta": {"source": "benchmarks/run.py", "tags": ["bench", "read"]},
            "state": "water",
        }
        created = client.post("/api/nodes", json=node, headers=auth)
        if created.status_code not in (201, 409):
            raise RuntimeError(f"could not create the benchmark node: {created.status_code} {created.text[:200]}")
        body = client.get(f"/api/nodes/{NODE_ID}", headers=auth)
        body.raise_for_status()
    asyncio.run(_cold_nodes(gateway, auth))
    return token, body.text


async def _cold_nodes(gateway: str, auth: dict[str, str]) -> None:
    """The nodes the uncached reads cycle over (already there from an earlier run: 409, fine)."""
    print(f"  creating {COLD_NODES} nodes for the uncached reads", flush=True)
    numbers = iter(range(COLD_NODES))

    async def create(client: httpx.AsyncClient) -> None:
        for n in numbers:
            node = {"id": f"{COLD_PREFIX}{n}", "typeId": "codex.note", "title": f"Cold {n}", "state": "water"}
            response = await client.post("/api/nodes", json=node, headers=auth)
            if response.status_code not in (201, 409):
                raise RuntimeError(f"could not create node {n}: {response.status_code} {response.text[:200]}")

    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        await asyncio.gather(*(create(client) for _ in range(16)))


def measure(seconds: float, connections: int, threads: int, rounds: int, with_gate: bool) -> dict[str, Any]:
    spec = load_spec("staging")
    began = time.monotonic()
    localenv.up(spec, print)
    setup_seconds = time.monotonic() - began
    token, node_json = _prepare(localenv.gateway_url())
    ports = Ports()
    auth = {"Authorization": f"Bearer {token}"}
    service = f"http://{HOST}:{ports.service}"
    endpoints: list[tuple[str, str, str, dict[str, str]]] = [
        ("nginx static return 200", f"http://{HOST}:{ports.static}/", "get", {}),
        ("bare FastAPI (uvicorn[standard])", f"http://{HOST}:{ports.bare}/api/nodes/{NODE_ID}", "get", {}),
        ("service /health/live", f"{service}/health/live", "get", {}),
        ("service node read, cached", f"{service}/api/nodes/{NODE_ID}", "get", auth),
        ("service node read, uncached", f"{service}/api/nodes/{COLD_PREFIX}", "cold", auth),
        ("service list ?limit=20", f"{service}/api/nodes?limit=20", "get", auth),
        ("service create node", f"{service}/api/nodes", "create", auth),
        ("service /health", f"{service}/health", "get", {}),
    ]
    rows: dict[str, WrkResult] = {}
    load_before = os.getloadavg()
    tag = secrets.token_hex(3)
    with anchors_and_gateway(spec, ports, node_json):
        for round_ in range(rounds):  # the machine is shared: each row keeps its best round
            for name, url, mode, headers in endpoints:
                common = {"connections": connections, "threads": threads, "mode": mode, "headers": headers}
                if round_ == 0:
                    run_wrk(url, seconds=2, tag=f"{tag}w", **common)  # type: ignore[arg-type]  # warm-up
                result = run_wrk(url, seconds=seconds, tag=f"{tag}{round_}", **common)  # type: ignore[arg-type]
                print(f"  {name:<34} {result.rps:>9.0f} rps  p95 {result.p95_ms:6.1f} ms", flush=True)
                if name not in rows or result.rps > rows[name].rps:
                    rows[name] = result
        cached = rows["service node read, cached"]
        paced_rate = round(0.7 * cached.rps)
        paced = run_wrk(
            f"{service}/api/nodes/{NODE_ID}",
            seconds=seconds,
            connections=connections,
            threads=threads,
            rate=paced_rate,
            headers=auth,
        )
        print(f"  node read paced at {paced_rate} rps: {paced.rps:.0f} rps, p95 {paced.p95_ms:.1f} ms", flush=True)
    load_during = os.getloadavg()
    gate = gate_under_load() if with_gate else {}
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench",
        "commit": _commit(),
        "wrk": {"seconds": seconds, "connections": connections, "threads": threads, "rounds": rounds},
        "machine": _machine(),
        "loadAverage": {"before": load_before, "afterWrk": load_during, "end": os.getloadavg()},
        "setupSeconds": round(setup_seconds, 1),
        "rows": {name: {**asdict(r), "rps": r.rps} for name, r in rows.items()},
        "paced": {"targetRps": paced_rate, **asdict(paced), "rps": paced.rps},
        "gate": gate,
        "previews": previews() if with_gate else {},
    }


def main(
    seconds: Annotated[float, typer.Option(help="wrk duration per endpoint")] = 8,
    connections: Annotated[int, typer.Option(help="wrk connections")] = 32,
    threads: Annotated[int, typer.Option(help="wrk threads")] = 2,
    rounds: Annotated[int, typer.Option(help="rounds over all endpoints; each keeps its best")] = 2,
    gate: Annotated[bool, typer.Option(help="also the gate (RSS, duration split) and the previews")] = True,
) -> None:
    results = measure(seconds, connections, threads, rounds, gate)
    if not gate:  # a quick look while tuning: the figures only, RESULTS.md untouched
        print(json.dumps(results["rows"], indent=1))
        return
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    write_results(results, HERE)
    print(f"==> {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    typer.run(main)
