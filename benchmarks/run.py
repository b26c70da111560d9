"""`make bench`: the service against its anchors, side by side in one run, through one nginx.

Brings the local environment up (2 replicas, PostgreSQL, Redis), starts two bare FastAPI replicas,
two asyncpg anchor replicas (benchmarks/asyncpg_app.py: the service's own SQL) and a benchmark nginx
rendered from the project's template, then runs wrk against: a static `return 200`, bare FastAPI, the
service's /health/live, node read (cached, uncached), list by type (cached, uncached), create and
/health, and the anchor's read, list and create (also with the untrusted auth check and with
SQLAlchemy's round trips); then the node read paced at 70% of its maximum; py-spy profiles of the
service's uncached read and create; the scale curve (1, 2, 4 replicas; 1k, 10k, 100k nodes); then the
gate with RSS sampled per replica, and both previews. Writes benchmarks/results.json, RESULTS.md,
results.png, scale.png and the profiles' SVGs (`--quick`: a shorter trial into .local/bench/quick/).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import profile, scale
from benchmarks.dataset import remove_written
from benchmarks.extras import gate_under_load, previews, replica_pids, rss_mb
from benchmarks.gateway import HOST, Ports
from benchmarks.report import (
    ANCHOR_CREATE,
    ANCHOR_LIST,
    ANCHOR_READ,
    ANCHOR_READ_CHECKED,
    BARE,
    STATIC,
    WIRE,
    write_results,
)
from benchmarks.stack import RUNTIME, Bench, anchor_env, anchors_and_gateway
from benchmarks.wrk import COLD_NODES, COLD_PREFIX, WrkResult, run_wrk
from codexops import localenv
from infra.spec import load_spec

HERE = Path(__file__).resolve().parent
NODE_ID = "bench.node"
LIST = "/api/nodes?typeId=codex.note&limit=20"
Wrk = Callable[..., WrkResult]
SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"


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


ENDPOINTS = (
    # (row, base, path, wrk mode, authenticated)
    (STATIC, "static", "/", "get", False),
    (BARE, "bare", f"/api/nodes/{NODE_ID}", "get", False),
    ("service /health/live", "service", "/health/live", "get", False),
    ("service node read, cached", "service", f"/api/nodes/{NODE_ID}", "get", True),
    ("service node read, uncached", "service", f"/api/nodes/{COLD_PREFIX}", "cold", True),
    (ANCHOR_READ, "asyncpg", f"/api/nodes/{COLD_PREFIX}", "cold", True),
    (ANCHOR_READ_CHECKED, "asyncpg", f"/auth/api/nodes/{COLD_PREFIX}", "cold", True),
    (ANCHOR_READ + WIRE, "asyncpg", f"/wire/api/nodes/{COLD_PREFIX}", "cold", True),
    ("service list 20 by type, cached", "service", LIST, "get", True),
    ("service list 20 by type, uncached", "service", LIST + "&offset=", "coldlist", True),
    (ANCHOR_LIST, "asyncpg", LIST + "&offset=", "coldlist", True),
    (ANCHOR_LIST + WIRE, "asyncpg", "/wire" + LIST + "&offset=", "coldlist", True),
    ("service create node", "service", "/api/nodes", "create", True),
    (ANCHOR_CREATE, "asyncpg", "/api/nodes", "create", True),
    (ANCHOR_CREATE + WIRE, "asyncpg", "/wire/api/nodes", "create", True),
    ("service /health", "service", "/health", "get", False),
)
PROFILED = {"uncached read": f"/api/nodes/{COLD_PREFIX}", "create": "/api/nodes"}


def _sessions_opened() -> int:
    """PostgreSQL sessions opened so far in the database (this query's own included)."""

    async def ask() -> int:
        conn = await asyncpg.connect(anchor_env()["BENCH_PG_DSN"])
        try:
            return int(await conn.fetchval(SESSIONS))
        finally:
            await conn.close()

    return asyncio.run(ask())


def _better(result: WrkResult, kept: WrkResult) -> bool:
    """A round without errors beats one with them (errors answer fast: a failing row would win on RPS)."""
    return (not result.errors, result.rps) > (not kept.errors, kept.rps)


def _endpoint_rows(bench: Bench, token: str, wrk: Wrk, rounds: int) -> tuple[dict[str, WrkResult], dict[str, int]]:
    """Each row's best round, and how many PostgreSQL connections were opened during it (pool churn)."""
    ports = bench.ports
    bases = {"static": ports.static, "bare": ports.bare, "service": ports.service, "asyncpg": ports.asyncpg}
    rows: dict[str, WrkResult] = {}
    opened: dict[str, int] = {}
    for round_ in range(rounds):  # the machine is shared: each row keeps its best round
        for name, base, path, mode, authenticated in ENDPOINTS:
            url = f"http://{HOST}:{bases[base]}{path}"
            headers = {"Authorization": f"Bearer {token}"} if authenticated else {}
            if round_ == 0:
                wrk(url, mode=mode, headers=headers, seconds=2)  # warm-up
            before = _sessions_opened()
            result = wrk(url, mode=mode, headers=headers)
            sessions = _sessions_opened() - before - 1
            errors = f"  {result.errors} ERRORS" if result.errors else ""
            print(
                f"  {name:<40} {result.rps:>9.0f} rps  p95 {result.p95_ms:6.1f} ms  {sessions} connections{errors}",
                flush=True,
            )
            if name not in rows or _better(result, rows[name]):
                rows[name], opened[name] = result, sessions
    return rows, opened


def _profiles(bench: Bench, token: str, wrk: Wrk, seconds: float, out: Path) -> dict[str, Any]:
    """py-spy on app-1 while wrk drives each profiled path (figures of these runs are not kept)."""
    pid = replica_pids().get("app-1")
    if pid is None:
        return {}
    found: dict[str, Any] = {}
    for name, path in PROFILED.items():
        slug = name.replace(" ", "-")
        svg, collapsed = out / f"profile-{slug}.svg", RUNTIME / f"profile-{slug}.txt"
        samplers = profile.start(pid, seconds, svg, collapsed)
        mode = "create" if name == "create" else "cold"
        url = f"http://{HOST}:{bench.ports.service}{path}"
        wrk(url, mode=mode, headers={"Authorization": f"Bearer {token}"}, seconds=seconds)
        if not profile.wait(samplers, timeout=60) or not collapsed.exists():
            print(f"  profile of {name}: py-spy failed (see `py-spy record --pid {pid}`)", flush=True)
            continue
        text = collapsed.read_text()
        found[name] = {
            "image": svg.name,
            "seconds": seconds,
            "top": profile.top_costs(text),
            "parts": profile.part_shares(text),
        }
        print(f"  profile of {name}: {svg}", flush=True)
    return found


def _take_back_writes() -> None:
    print("  removing the nodes benchmarks wrote (creates, scale seeds)", flush=True)
    removed = remove_written(anchor_env()["BENCH_PG_DSN"])
    print(f"  removed {removed:,} nodes", flush=True)


def _rss_now() -> dict[str, float]:
    return {name: rss_mb(pid) for name, pid in replica_pids().items()}


def measure(
    seconds: float, connections: int, threads: int, rounds: int, with_gate: bool, scale_seconds: float, out: Path
) -> dict[str, Any]:
    spec = load_spec("staging")
    began = time.monotonic()
    if localenv.supervisord_pid(spec.stack) is not None:
        # Replicas started earlier run the code they loaded then, not this checkout's: measure this one.
        print("==> stopping the running local stack: the benchmark starts its replicas from this checkout")
        localenv.down(print, stack=spec.stack)
    localenv.up(spec, print)
    setup_seconds = time.monotonic() - began
    token, node_json = _prepare(localenv.gateway_url())
    tag = secrets.token_hex(3)

    def wrk(url: str, seconds: float = seconds, **options: Any) -> WrkResult:
        return run_wrk(
            url, seconds=seconds, connections=connections, threads=threads, tag=tag + secrets.token_hex(2), **options
        )

    def scale_wrk(url: str, **options: Any) -> WrkResult:
        return wrk(url, seconds=scale_seconds, **options)

    load_before = os.getloadavg()
    auth = {"Authorization": f"Bearer {token}"}
    _take_back_writes()  # an interrupted run's, so this one starts from the same data set
    try:
        with anchors_and_gateway(spec, Ports.from_env(), node_json) as bench:
            rows, opened = _endpoint_rows(bench, token, wrk, rounds)
            cached = rows["service node read, cached"]
            paced_rate = round(0.7 * cached.rps)
            service = f"http://{HOST}:{bench.ports.service}"
            paced = wrk(f"{service}/api/nodes/{NODE_ID}", rate=paced_rate, headers=auth)
            print(f"  node read paced at {paced_rate} rps: {paced.rps:.0f} rps, p95 {paced.p95_ms:.1f} ms", flush=True)
            rss_after = _rss_now()
            load_during = os.getloadavg()
            profiles = _profiles(bench, token, wrk, max(4.0, seconds), out)
            print("  scale curve", flush=True)
            curve = scale.by_replicas(bench, scale_wrk, auth, print) + scale.by_size(bench, scale_wrk, auth, print)
    finally:
        _take_back_writes()  # before the gate: it judges the stack as a user left it
    load_scale = os.getloadavg()
    gate = gate_under_load() if with_gate else {}
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench",
        "commit": _commit(),
        "wrk": {"seconds": seconds, "connections": connections, "threads": threads, "rounds": rounds},
        "scaleSeconds": scale_seconds,
        "machine": _machine(),
        "loadAverage": {
            "before": load_before,
            "afterWrk": load_during,
            "afterScale": load_scale,
            "end": os.getloadavg(),
        },
        "setupSeconds": round(setup_seconds, 1),
        "rows": {name: {**asdict(r), "rps": r.rps} for name, r in rows.items()},
        "paced": {"targetRps": paced_rate, **asdict(paced), "rps": paced.rps},
        "rssAfterWrkMB": rss_after,
        "connectionsOpened": opened,
        "profiles": profiles,
        "scale": curve,
        "gate": gate,
        "previews": previews() if with_gate else {},
    }


def main(
    seconds: Annotated[float, typer.Option(help="wrk duration per endpoint")] = 8,
    connections: Annotated[int, typer.Option(help="wrk connections")] = 32,
    threads: Annotated[int, typer.Option(help="wrk threads")] = 2,
    rounds: Annotated[int, typer.Option(help="rounds over all endpoints; each keeps its best")] = 2,
    scale_seconds: Annotated[float, typer.Option(help="wrk duration per point of the scale curve")] = 4,
    gate: Annotated[bool, typer.Option(help="also the gate (RSS, duration split) and the previews")] = True,
    quick: Annotated[
        bool,
        typer.Option(
            help="a trial: 3 s per endpoint, one round, 2 s per scale point, no gate; written to .local/bench/quick/"
        ),
    ] = False,
) -> None:
    # A TERM (a CI timeout, kill) unwinds like Ctrl-C: the anchors and the nginx it started are stopped,
    # not left answering on the ports the next run measures.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = HERE
    if quick:
        seconds, rounds, scale_seconds, gate, out = 3, 1, 2, False, RUNTIME / "quick"
        out.mkdir(parents=True, exist_ok=True)
    try:
        results = measure(seconds, connections, threads, rounds, gate, scale_seconds, out)
    except RuntimeError as exc:  # what could not start, and what to do: a sentence, not a traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_results(results, out, history=HERE)
    print(f"==> {out / 'RESULTS.md'}")


if __name__ == "__main__":
    typer.run(main)
