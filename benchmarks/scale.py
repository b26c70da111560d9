"""The scale curve: the database paths at 1, 2 and 4 replicas, and read and list at 1k, 10k and 100k nodes.

Service and asyncpg anchor side by side at each point, through the same nginx (re-rendered per replica
count). The data-size points use a type of their own (SCALE_TYPE), seeded straight into PostgreSQL
with COPY, so the list by type counts and sorts exactly that many rows on both sides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import asyncpg

from benchmarks.gateway import HOST, Ports
from benchmarks.stack import Bench, anchor_env
from benchmarks.wrk import COLD_NODES, COLD_PREFIX, WrkResult

SCALE_TYPE, SCALE_PREFIX = "bench.scale", "bench.scale."
REPLICAS = (1, 2, 4)
SIZES = (1_000, 10_000, 100_000)
Wrk = Callable[..., WrkResult]


def paths(ports: Ports, type_id: str, prefix: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Per path: the service's and the anchor's URL and wrk mode."""
    service, anchor = f"http://{HOST}:{ports.service}", f"http://{HOST}:{ports.asyncpg}"
    suffix = {
        "read": (f"/api/nodes/{prefix}", "cold"),
        "list": (f"/api/nodes?typeId={type_id}&limit=20&offset=", "coldlist"),
        "create": ("/api/nodes", "create"),
    }
    return {
        name: {"service": (service + path, mode), "asyncpg": (anchor + path, mode)}
        for name, (path, mode) in suffix.items()
    }


async def seed(dsn: str, count: int) -> None:
    """Exactly `count` nodes of SCALE_TYPE (ids SCALE_PREFIX0..), as the service would store them."""
    now = datetime.now(UTC)
    records = [(f"{SCALE_PREFIX}{n}", SCALE_TYPE, f"Scale {n}", "", "{}", "water", 1, now, now) for n in range(count)]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM nodes WHERE type_id = $1", SCALE_TYPE)
            columns = ["id", "type_id", "title", "content", "meta", "state", "version", "created_at", "updated_at"]
            await conn.copy_records_to_table("nodes", records=records, columns=columns)
        await conn.execute("ANALYZE nodes")
    finally:
        await conn.close()


def _point(
    run: Wrk, url: str, mode: str, cold: int, auth: dict[str, str], say: Callable[[str], None], label: str
) -> dict[str, Any]:
    result = run(url, mode=mode, headers=auth, cold_nodes=cold)
    say(f"  {label:<44} {result.rps:>8.0f} rps  p95 {result.p95_ms:6.1f} ms")
    return {**asdict(result), "rps": result.rps}


def by_replicas(bench: Bench, run: Wrk, auth: dict[str, str], say: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    for count in REPLICAS:
        bench.set_service(count)
        bench.set_anchors(count)
        for name, sides in paths(bench.ports, "codex.note", COLD_PREFIX).items():
            for side, (url, mode) in sides.items():
                figures = _point(run, url, mode, COLD_NODES, auth, say, f"{count} replicas, {name}, {side}")
                rows.append({"replicas": count, "nodes": None, "path": name, "side": side, **figures})
    bench.set_service(2)
    bench.set_anchors(2)
    return rows


def by_size(bench: Bench, run: Wrk, auth: dict[str, str], say: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    dsn = anchor_env()["BENCH_PG_DSN"]
    for size in SIZES:
        asyncio.run(seed(dsn, size))
        for name, sides in paths(bench.ports, SCALE_TYPE, SCALE_PREFIX).items():
            if name == "create":
                continue
            for side, (url, mode) in sides.items():
                cold = min(size, COLD_NODES)  # reads cycle over this many ids; lists over this many offsets
                figures = _point(run, url, mode, cold, auth, say, f"{size:,} nodes, {name}, {side}")
                rows.append({"replicas": 2, "nodes": size, "path": name, "side": side, **figures})
    asyncio.run(seed(dsn, 0))
    return rows
