"""What the service sends PostgreSQL per request, read from the server's own statement log: a read is its
one query (no transaction opened and rolled back around it, none for the pool's pre-ping), and a write
is still one transaction, committed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.authview import load_user
from app.storage import migrate
from app.storage.database import create_engine, postgres_target, reader
from app.storage.graph import GraphStore
from tests.support.servers import Postgres

pytestmark = pytest.mark.integration
NODE = {"id": "n1", "typeId": "codex.note", "title": "One", "content": "c", "meta": {}, "state": "water"}
LOGGED = re.compile(r"LOG:  (?:statement|execute [^:]*): (.*)")


async def _logged(postgres: Postgres, call: Callable[[], Awaitable[Any]]) -> list[str]:
    """The statements PostgreSQL logged while `call` ran (first words, upper case: BEGIN, SELECT, ...)."""
    log = postgres.data_dir / "server.log"
    start = log.stat().st_size
    await call()
    with log.open(errors="replace") as text:
        text.seek(start)
        return [m.group(1).split()[0].rstrip(";").upper() for m in LOGGED.finditer(text.read())]


@pytest.fixture
async def engine(fresh_postgres: Postgres, make_settings: Any) -> Any:
    fresh_postgres.psql(f"ALTER DATABASE {fresh_postgres.database} SET log_statement = 'all'")
    engine = create_engine(postgres_target(fresh_postgres.url), make_settings())
    await migrate.upgrade(engine)
    await GraphStore(engine).create_node(dict(NODE))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_a_read_is_its_one_query(fresh_postgres: Postgres, engine: AsyncEngine) -> None:
    graph = GraphStore(engine)
    assert await _logged(fresh_postgres, lambda: graph.get_node("n1")) == ["SELECT"]
    listing = lambda: graph.list_nodes(type_id="codex.note", state=None, search=None, limit=20, offset=0)  # noqa: E731
    assert await _logged(fresh_postgres, listing) == ["SELECT", "SELECT"]  # the count, the page
    assert await _logged(fresh_postgres, lambda: load_user(reader(engine), 1)) == ["SELECT"]


async def test_a_write_is_one_transaction_committed(fresh_postgres: Postgres, engine: AsyncEngine) -> None:
    graph = GraphStore(engine)
    node = {**NODE, "id": "n2"}
    assert await _logged(fresh_postgres, lambda: graph.create_node(node)) == ["BEGIN", "INSERT", "SELECT", "COMMIT"]


async def test_a_failed_write_leaves_nothing(fresh_postgres: Postgres, engine: AsyncEngine) -> None:
    """The engine's `begin()` is a real transaction although the pool keeps connections in autocommit."""
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await GraphStore(engine).upsert_node(conn, "n3", {"typeId": "codex.note", "title": "Three"})
            raise RuntimeError("the request failed after its first statement")
    assert (await GraphStore(engine).list_nodes(type_id=None, state=None, search=None, limit=20, offset=0))[
        "total"
    ] == 1


async def test_a_page_of_a_type_walks_its_index(fresh_postgres: Postgres, engine: AsyncEngine) -> None:
    """The list's page reads the type in order from ix_nodes_type_created_id (migration 0006), no sort."""
    graph = GraphStore(engine)
    for i in range(300):
        await graph.create_node({"id": f"b{i}", "typeId": "codex.bulk", "title": f"bulk {i}"})
    fresh_postgres.psql("ANALYZE nodes", database=fresh_postgres.database)
    plan = fresh_postgres.psql(
        "EXPLAIN SELECT * FROM nodes WHERE type_id = 'codex.bulk' ORDER BY created_at, id LIMIT 20 OFFSET 100",
        database=fresh_postgres.database,
    )
    assert "ix_nodes_type_created_id" in plan and "Sort" not in plan, plan
