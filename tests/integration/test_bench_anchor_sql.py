"""The asyncpg anchor (benchmarks/asyncpg_app.py) runs exactly the service's SQL and answers its JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.authview import load_user
from app.storage import migrate
from app.storage.database import create_engine, postgres_target, reader
from app.storage.graph import GraphStore
from benchmarks import sql
from tests.support.servers import Postgres

pytestmark = pytest.mark.integration
NODE = {"id": "n1", "typeId": "codex.note", "title": "One", "content": "c", "meta": {"k": [1]}, "state": "water"}


async def _issued(engine: AsyncEngine, call: Callable[[], Awaitable[Any]]) -> tuple[str, ...]:
    """The statements `call` sends to PostgreSQL, as SQLAlchemy hands them to asyncpg."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    pool = reader(engine).sync_engine  # the engine under both: its listeners see reads and writes
    event.listen(pool, "before_cursor_execute", record)
    try:
        await call()
    finally:
        event.remove(pool, "before_cursor_execute", record)
    return tuple(seen)


async def test_the_anchor_statements_are_the_ones_the_service_issues(fresh_postgres: Postgres, make_settings) -> None:
    engine = create_engine(postgres_target(fresh_postgres.url), make_settings())
    try:
        await migrate.upgrade(engine)
        graph = GraphStore(engine)
        assert await _issued(engine, lambda: graph.create_node(dict(NODE))) == sql.PATHS["create"]
        assert await _issued(engine, lambda: graph.get_node("n1")) == sql.PATHS["read"]
        listing = lambda: graph.list_nodes(type_id="codex.note", state=None, search=None, limit=20, offset=0)  # noqa: E731
        assert await _issued(engine, listing) == sql.PATHS["list"]
        assert await _issued(engine, lambda: load_user(engine, 1)) == sql.PATHS["auth"]
    finally:
        await engine.dispose()


async def test_the_anchor_answers_what_the_service_stores(
    fresh_postgres: Postgres, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(postgres_target(fresh_postgres.url), make_settings())
    await migrate.upgrade(engine)
    graph = GraphStore(engine)
    await graph.create_node(dict(NODE))
    stored = await graph.get_node("n1")
    listed = await graph.list_nodes(type_id="codex.note", state=None, search=None, limit=20, offset=0)
    await engine.dispose()
    monkeypatch.setenv("BENCH_PG_DSN", fresh_postgres.url)
    monkeypatch.setenv("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")  # the JWT-only routes never reach Redis
    from benchmarks import asyncpg_app

    monkeypatch.setattr(asyncpg_app, "SECRET", "s" * 40)
    claims = {"iss": "living-codex", "sub": "a", "uid": 1, "role": "editor", "sid": "s", "jti": "j", "exp": 2**33}
    auth = {"Authorization": "Bearer " + jwt.encode(claims, "s" * 40, algorithm="HS256")}
    async with LifespanManager(asyncpg_app.app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://anchor") as client:
            assert (await client.get("/api/nodes/n1")).status_code == 401  # no token
            assert (await client.get("/api/nodes/n1", headers=auth)).json() == stored
            assert (await client.get("/api/nodes?typeId=codex.note&limit=20", headers=auth)).json() == listed
            assert (await client.get("/wire/api/nodes/n1", headers=auth)).json() == stored  # + SQLAlchemy's trips
            assert (await client.get("/wire/api/nodes?typeId=codex.note&limit=20", headers=auth)).json() == listed
            node = {"id": "n2", "typeId": "codex.note", "title": "Two", "state": "water"}
            created = await client.post("/api/nodes", headers=auth, json=node)
            assert created.status_code == 201
            assert created.json() | {"createdAt": None, "updatedAt": None} == {
                **node,
                "content": "",
                "meta": {},
                "version": 1,
                "createdAt": None,
                "updatedAt": None,
            }
            assert (await client.post("/api/nodes", headers=auth, json=node)).status_code == 409
            wired = await client.post("/wire/api/nodes", headers=auth, json={**node, "id": "n3"})
            assert wired.status_code == 201 and wired.json()["id"] == "n3"
