"""`make bench` takes back the nodes it wrote, and only those: the stack the next gate judges is the user's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from app.storage import migrate
from app.storage.database import create_engine, postgres_target
from app.storage.graph import GraphStore
from benchmarks.dataset import remove_written
from benchmarks.scale import SCALE_TYPE
from benchmarks.wrk import CREATE_TYPE
from tests.support.servers import Postgres

pytestmark = pytest.mark.integration
NODES = [("mine", "codex.note"), ("made", CREATE_TYPE), ("seeded", SCALE_TYPE)]


async def _store(postgres: Postgres, make_settings) -> None:
    engine = create_engine(postgres_target(postgres.url), make_settings())
    try:
        await migrate.upgrade(engine)
        graph = GraphStore(engine)
        for node_id, type_id in NODES:
            await graph.create_node({"id": node_id, "typeId": type_id, "title": node_id, "state": "water"})
        await graph.create_edge({"fromId": "mine", "toId": "made", "role": "relates"})
    finally:
        await engine.dispose()


async def _left(dsn: str) -> tuple[list[str], int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["id"] for r in await conn.fetch("SELECT id FROM nodes ORDER BY id")], await conn.fetchval(
            "SELECT count(*) FROM edges"
        )
    finally:
        await conn.close()


async def test_the_benchmarks_nodes_and_their_edges_go_and_the_users_stay(
    fresh_postgres: Postgres, make_settings
) -> None:
    await _store(fresh_postgres, make_settings)
    assert await _left(fresh_postgres.url) == (["made", "mine", "seeded"], 1)
    removed = await asyncio.to_thread(remove_written, fresh_postgres.url)  # it runs its own loop, as make bench does
    assert removed == 2
    assert await _left(fresh_postgres.url) == (["mine"], 0)  # the edge to a removed node cascaded


async def _pages(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT pg_relation_size('nodes') / current_setting('block_size')::int"))
    finally:
        await conn.close()


async def test_the_table_shrinks_back_to_what_stays(fresh_postgres: Postgres, make_settings) -> None:
    # A user's node written after the benchmark's: a plain VACUUM could not cut the heap's tail, and the
    # next count over the type would read every page the benchmark filled.
    conn = await asyncpg.connect(fresh_postgres.url)
    try:
        await _store(fresh_postgres, make_settings)
        now = datetime.now(UTC)
        rows = [(f"c{n}", CREATE_TYPE, "x" * 200, "", "{}", "water", 1, now, now) for n in range(5_000)]
        columns = ["id", "type_id", "title", "content", "meta", "state", "version", "created_at", "updated_at"]
        await conn.copy_records_to_table("nodes", records=rows, columns=columns)
        await conn.execute(
            "INSERT INTO nodes SELECT 'late', type_id, title, content, meta, state, version, created_at, "
            "updated_at FROM nodes WHERE id = 'mine'"
        )
    finally:
        await conn.close()
    filled = await _pages(fresh_postgres.url)
    await asyncio.to_thread(remove_written, fresh_postgres.url)
    assert await _pages(fresh_postgres.url) < filled / 20
