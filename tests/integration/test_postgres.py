"""PostgreSQL for real: migrations both ways, the runbook's connection string, an outage."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.storage import migrate
from app.storage.database import create_engine, postgres_target
from tests.conftest import running
from tests.support.servers import Postgres

pytestmark = pytest.mark.integration
TABLES = {"nodes", "edges", "users", "sessions", "revoked_tokens", "ai_jobs", "login_throttle"}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names())) - {"alembic_version"}


async def test_migrations_run_forward_and_backward(fresh_postgres: Postgres, make_settings) -> None:
    engine = create_engine(postgres_target(fresh_postgres.url), make_settings())
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert await _tables(engine) == TABLES
        await migrate.downgrade(engine, "0001")
        assert await _tables(engine) == {"nodes", "edges", "users"}
        await migrate.downgrade(engine, "base")
        assert await _tables(engine) == set()
        await migrate.upgrade(engine)
        assert await _tables(engine) == TABLES
    finally:
        await engine.dispose()


async def test_migrations_on_sqlite_run_both_ways(make_settings, tmp_path) -> None:
    from app.storage.database import sqlite_target

    engine = create_engine(sqlite_target(f"Data Source={tmp_path}/m.db"), make_settings())
    try:
        await migrate.upgrade(engine)
        assert await _tables(engine) == TABLES
        await migrate.downgrade(engine, "base")
        assert await _tables(engine) == set()
    finally:
        await engine.dispose()


async def test_service_on_postgres_with_the_runbook_connection_string(fresh_postgres: Postgres, make_settings) -> None:
    settings = make_settings(connection_string=fresh_postgres.runbook_connection_string)
    async for app in running(settings):
        health = (await app.client.get("/health")).json()
        assert health["database"]["status"] == "up" and health["database"]["backend"] == "postgresql"
        h = await app.bearer()
        created = await app.client.post("/api/nodes", headers=h, json={"id": "pg", "typeId": "t", "title": "pg"})
        assert created.status_code == 201
        assert (await app.client.get("/api/nodes/pg", headers=h)).json()["title"] == "pg"
        assert "codex" not in health["modules"][0].get("error", "")  # no password anywhere in health
        memory = (await app.client.get("/health/memory")).json()
        assert fresh_postgres.password not in str(memory)


async def test_postgres_outage_is_reported_not_a_500(fresh_postgres: Postgres, make_settings) -> None:
    settings = make_settings(connection_string=fresh_postgres.url)
    async for app in running(settings):
        h = await app.bearer()
        fresh_postgres.stop()
        try:
            health = await app.client.get("/health")
            assert health.status_code == 503
            body = health.json()
            assert body["status"] == "unhealthy" and body["database"]["status"] == "down"
            assert body["healthScore"] <= 60
            read = await app.client.get("/api/nodes?limit=7", headers=h)
            assert read.status_code == 503, read.text
            assert read.json()["error"] in ("database_unavailable", "sessions_unavailable")
            assert "codex_database_up 0.0" in (await app.client.get("/metrics")).text
        finally:
            fresh_postgres.start()
        assert (await app.client.get("/health")).json()["database"]["status"] == "up"
        assert (await app.client.get("/api/nodes", headers=h)).status_code == 200


async def test_concurrent_upserts_of_one_concept_never_conflict(fresh_postgres: Postgres, make_settings) -> None:
    """Two replicas extracting the same concept at once: both transactions succeed, one row stays.
    (Check-then-insert raced into a unique violation here and failed the AI job.)"""
    import asyncio

    from app.storage.graph import GraphStore

    engine = create_engine(postgres_target(fresh_postgres.url), make_settings())
    try:
        await migrate.upgrade(engine)
        graph = GraphStore(engine)

        async def extract(title: str) -> None:
            async with engine.begin() as conn:
                await graph.upsert_node(conn, "concept-glacier", {"typeId": "codex.concept", "title": title})
                await asyncio.sleep(0.2)  # both inserts are in flight before either commits

        await asyncio.gather(extract("glacier"), extract("glacier"))
        async with engine.connect() as conn:
            count = await conn.scalar(text("SELECT count(*) FROM nodes WHERE id = 'concept-glacier'"))
        assert count == 1
    finally:
        await engine.dispose()


WIDE_BOB = "\uff22\uff2f\uff22"  # fullwidth BOB: NFKC makes it BOB


async def _add_user(engine: AsyncEngine, username: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (username, password_hash, role, failed_logins, created_at, disabled,"
                " security_stamp) VALUES (:name, 'h', 'viewer', 0, CURRENT_TIMESTAMP, false, 's')"
            ),
            {"name": username},
        )


async def _usernames(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT username FROM users ORDER BY id"))).scalars())


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_usernames_colliding_ignoring_case_stop_the_migration_and_lose_nothing(
    backend: str, request: pytest.FixtureRequest, make_settings, tmp_path
) -> None:
    from app.storage.database import sqlite_target

    if backend == "postgresql":
        target = postgres_target(request.getfixturevalue("fresh_postgres").url)
    else:
        target = sqlite_target(f"Data Source={tmp_path}/m.db")
    engine = create_engine(target, make_settings())
    try:
        await migrate.upgrade(engine, "0004")  # accounts made before usernames were compared ignoring case
        for name in ("admin", "Admin", "bob", WIDE_BOB, "carol"):
            await _add_user(engine, name)
        with pytest.raises(RuntimeError) as refused:
            await migrate.upgrade(engine)
        message = str(refused.value)
        assert "'admin' (id 1) and 'Admin' (id 2)" in message and f"'bob' (id 3) and {WIDE_BOB!r} (id 4)" in message
        assert "carol" not in message and "Nothing was changed" in message and "DELETE /api/admin/users/" in message
        assert await migrate.current_revision(engine) == "0004"
        assert await _usernames(engine) == ["admin", "Admin", "bob", WIDE_BOB, "carol"]
        async with engine.begin() as conn:  # what the message says to do: keep one of each
            await conn.execute(text("DELETE FROM users WHERE username IN ('Admin', :bob)"), {"bob": WIDE_BOB})
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            keys = (await conn.execute(text("SELECT username, username_key FROM users ORDER BY id"))).all()
        assert [tuple(row) for row in keys] == [("admin", "admin"), ("bob", "bob"), ("carol", "carol")]
        with pytest.raises(IntegrityError):  # the index holds for any writer, not only the app
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO users (username, username_key, password_hash, role, failed_logins,"
                        " created_at, disabled, security_stamp)"
                        " VALUES ('BOB', 'bob', 'h', 'viewer', 0, CURRENT_TIMESTAMP, false, 's')"
                    )
                )
    finally:
        await engine.dispose()
