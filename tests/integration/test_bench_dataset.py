"""`make bench` takes back the nodes it wrote, and only those: the stack the next gate judges is the user's."""

from __future__ import annotations

import asyncio

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
