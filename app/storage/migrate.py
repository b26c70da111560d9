"""Versioned schema migrations (Alembic), forward and backward, safe with replicas starting together."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_ID = 0x436F646578  # any constant; serialises migrations of replicas on one PostgreSQL


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def _run(engine: AsyncEngine, direction: str, revision: str) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        action = command.upgrade if direction == "up" else command.downgrade
        await conn.run_sync(lambda sync_conn: action(_config(sync_conn), revision))


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, "up", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, "down", revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision())
