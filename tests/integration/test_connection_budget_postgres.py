"""The connection budget on a real PostgreSQL: the server runs with the spec's max_connections, and every
replica's pool at the peak, held at once, leaves the reserved connections to the other clients
(tests/infra/test_connection_budget.py has the arithmetic; before, each pool kept 20 whatever the server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.storage.database import create_engine, postgres_target
from infra.app_env import spec_env
from infra.catalogue import postgres_options
from infra.spec import RESERVED_CONNECTIONS, EnvironmentSpec, load_spec
from tests.conftest import SettingsFactory
from tests.support.servers import Postgres, remove_postgres, start_postgres

pytestmark = pytest.mark.integration
SUPERUSER_RESERVED = 3  # PostgreSQL's superuser_reserved_connections: part of RESERVED_CONNECTIONS


@pytest.fixture(scope="module")
def spec() -> EnvironmentSpec:
    """Staging with 3 replicas on a 30-connection server: 4 at the peak (the canary), 5 connections each."""
    staging = load_spec("staging").model_dump()
    staging["replicas"] = 3
    staging["postgres"]["maxConnections"] = 30
    return EnvironmentSpec.model_validate(staging)


@pytest.fixture(scope="module")
def server(spec: EnvironmentSpec) -> Iterator[Postgres]:
    started = start_postgres(postgres_options(spec))  # as the platforms' servers are told it
    yield started
    remove_postgres(started)


@pytest.fixture
async def pools(
    server: Postgres, spec: EnvironmentSpec, make_settings: SettingsFactory
) -> AsyncIterator[list[AsyncEngine]]:
    """One engine per replica at the peak, built as the app builds it, from the variable the spec sets."""
    settings = make_settings(database_pool_size=int(spec_env(spec, "docker")["DATABASE_POOL_SIZE"]))
    engines = [create_engine(postgres_target(server.url), settings) for _ in range(spec.peak_app_replicas)]
    yield engines
    for engine in engines:
        await engine.dispose()


async def test_every_pool_held_at_the_peak_leaves_the_reserved_connections(
    server: Postgres, spec: EnvironmentSpec, pools: list[AsyncEngine]
) -> None:
    assert server.psql("SHOW max_connections").strip() == "30"
    assert spec.database_pool_size == 5
    assert [e.sync_engine.pool.size() for e in pools] == [5] * 4  # type: ignore[attr-defined]  # no overflow
    async with AsyncExitStack() as stack:
        held = [await stack.enter_async_context(e.connect()) for e in pools for _ in range(spec.database_pool_size)]
        count = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'codex'"
        assert (await held[0].execute(text(count))).scalar_one() == 4 * 5
        # The migration, the backup's pg_dump, the password sync and an operator's psql still get in.
        others = [await asyncpg.connect(server.url) for _ in range(RESERVED_CONNECTIONS - SUPERUSER_RESERVED)]
        for other in others:
            assert await other.fetchval("SELECT 1") == 1
            await other.close()


async def test_the_pool_the_app_kept_before_did_not_fit(server: Postgres, spec: EnvironmentSpec) -> None:
    """The control: 20 per replica, as before, runs the same server out of connections."""
    opened: list[asyncpg.Connection] = []
    try:
        with pytest.raises(asyncpg.TooManyConnectionsError):
            for _ in range(spec.peak_app_replicas * 20):
                opened.append(await asyncpg.connect(server.url))
        assert len(opened) == 30 - SUPERUSER_RESERVED
    finally:
        for connection in opened:
            await connection.close()
