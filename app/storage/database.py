"""The SQL engine: PostgreSQL through asyncpg, or the embedded SQLite through aiosqlite."""

from __future__ import annotations

import ssl
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import ConfigError, Settings

# Keys of the runbook's ADO.NET-style string, mapped to URL parts.
_ADO_KEYS = {
    "host": "host",
    "server": "host",
    "port": "port",
    "database": "database",
    "username": "username",
    "user id": "username",
    "user": "username",
    "password": "password",
    "ssl mode": "sslmode",
    "sslmode": "sslmode",
}


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the data lives, in a form both SQLAlchemy and the health report can use."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return "postgresql" if self.url.get_backend_name() == "postgresql" else "sqlite"

    @property
    def redacted(self) -> str:
        return self.url.render_as_string(hide_password=True)


def _parse_key_values(text: str, variable: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for chunk in filter(None, (c.strip() for c in text.split(";"))):
        key, sep, value = chunk.partition("=")
        if not sep:
            raise ConfigError(f"{variable}: '{chunk}' is not key=value")
        parts[key.strip().lower()] = value.strip()
    return parts


def _ssl_args(sslmode: str | None) -> dict[str, Any]:
    if not sslmode or sslmode.lower() in ("disable", "prefer", "allow"):
        return {}
    context = ssl.create_default_context()
    if sslmode.lower() == "require":  # encrypt, as libpq's 'require' does, without verifying
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return {"ssl": context}


def postgres_target(connection_string: str) -> DatabaseTarget:
    """Accept a postgresql:// URL or the runbook's Host=..;Database=..;Username=..;Password=.. form."""
    text = connection_string.strip()
    if text.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
        url = make_url(text.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+asyncpg")
        sslmode = url.query.get("sslmode")
        url = url.difference_update_query(["sslmode"])
        return DatabaseTarget(url, _ssl_args(sslmode if isinstance(sslmode, str) else None))
    parts = _parse_key_values(text, "CONNECTION_STRING")
    unknown = set(parts) - set(_ADO_KEYS)
    if unknown:
        raise ConfigError(
            f"CONNECTION_STRING has unknown keys {sorted(unknown)}; "
            "allowed: Host, Port, Database, Username, Password, SSL Mode"
        )
    values = {_ADO_KEYS[key]: value for key, value in parts.items()}
    missing = {"host", "database"} - set(values)
    if missing:
        raise ConfigError(f"CONNECTION_STRING lacks {sorted(missing)}")
    url = URL.create(
        "postgresql+asyncpg",
        username=values.get("username"),
        password=values.get("password"),
        host=values["host"],
        port=int(values["port"]) if "port" in values else None,
        database=values["database"],
    )
    return DatabaseTarget(url, _ssl_args(values.get("sslmode")))


def sqlite_target(connection_string: str) -> DatabaseTarget:
    """Accept 'Data Source=./ice_prod.db' (the runbook's form), a bare path or a sqlite:// URL."""
    text = connection_string.strip()
    if text.startswith("sqlite"):
        return DatabaseTarget(make_url(text).set(drivername="sqlite+aiosqlite"))
    path = _parse_key_values(text, "SQLITE_CONNECTION_STRING").get("data source") if "=" in text else text
    if not path:
        raise ConfigError("SQLITE_CONNECTION_STRING needs 'Data Source=<file>'")
    return DatabaseTarget(URL.create("sqlite+aiosqlite", database=path))


def database_target(settings: Settings) -> DatabaseTarget:
    """PostgreSQL when CONNECTION_STRING is set, else the embedded SQLite file."""
    if settings.connection_string:
        return postgres_target(settings.connection_string)
    return sqlite_target(settings.sqlite_connection_string)


def _sqlite_pragmas(optimize: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if optimize:  # ENABLE_DATABASE_OPTIMIZATION: concurrent readers, fewer fsyncs
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def create_engine(target: DatabaseTarget, settings: Settings) -> AsyncEngine:
    """One pooled engine; pool sizing and pragmas follow ENABLE_DATABASE_OPTIMIZATION.

    On PostgreSQL every `begin()`/`connect()` of the returned engine is a READ COMMITTED transaction, as
    SQLAlchemy's default gives, while the pool keeps its connections in autocommit between checkouts:
    the checkout's pre-ping is then one empty query instead of BEGIN, the query and ROLLBACK (the level is
    set on asyncpg's side, no round trip). `reader()` gives single-statement reads with no transaction."""
    optimize = settings.enable_database_optimization
    if target.backend == "sqlite":
        engine = create_async_engine(target.url, connect_args=target.connect_args, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(optimize))
        return engine
    connect_args = {"timeout": 5, "command_timeout": 10, **target.connect_args}
    pooled = create_async_engine(
        target.url,
        connect_args=connect_args,
        hide_parameters=True,  # a failed statement's message never carries the user's values
        isolation_level="AUTOCOMMIT",  # between checkouts only: the engine returned below is transactional
        # Every connection kept (no overflow): an overflow connection is closed when returned, and under a
        # burst each request then opens one anew (TCP, SCRAM, statements prepared again; benchmarks/NOTES.md).
        pool_size=settings.database_pool_size if optimize else min(5, settings.database_pool_size),
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=5,
    )
    transactional = pooled.execution_options(isolation_level="READ COMMITTED")
    _READERS[transactional.sync_engine] = pooled
    return transactional


# The autocommit engine behind each transactional one. An option derived from the transactional engine
# would not do: SQLAlchemy applies the parent's isolation level after the child's, so READ COMMITTED wins.
_READERS: weakref.WeakKeyDictionary[Engine, AsyncEngine] = weakref.WeakKeyDictionary()


def reader(engine: AsyncEngine) -> AsyncEngine:
    """`engine` for reads of one statement each (or several that need no common snapshot): on PostgreSQL in
    autocommit, so a read is its one query, without autobegin's BEGIN and ROLLBACK. Under READ COMMITTED
    each statement takes its own snapshot anyway, so such a read sees what it saw inside a transaction.
    The same pool; `engine` itself for SQLite or an engine create_engine did not make."""
    return _READERS.get(engine.sync_engine, engine)
