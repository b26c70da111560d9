from __future__ import annotations

import pytest

from app.config import ConfigError, Settings
from app.storage.database import database_target, postgres_target, sqlite_target


def test_runbook_connection_string_becomes_an_asyncpg_url() -> None:
    target = postgres_target("Host=db;Database=livingcodex;Username=user;Password=p@ss")
    assert target.backend == "postgresql"
    assert target.url.drivername == "postgresql+asyncpg"
    assert (target.url.host, target.url.database, target.url.username) == ("db", "livingcodex", "user")
    assert target.url.password == "p@ss"
    assert "p@ss" not in target.redacted


def test_postgres_url_is_accepted_with_ssl() -> None:
    target = postgres_target("postgres://u:p@db:5433/codex?sslmode=require")
    assert target.url.port == 5433
    assert "sslmode" not in target.url.query
    assert "ssl" in target.connect_args


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"(?i)timeout"):
        postgres_target("Host=db;Database=x;Timeout=5")


def test_missing_database_is_named() -> None:
    with pytest.raises(ConfigError, match="database"):
        postgres_target("Host=db")


def test_sqlite_data_source() -> None:
    target = sqlite_target("Data Source=./ice_prod.db")
    assert target.backend == "sqlite"
    assert target.url.database == "./ice_prod.db"


def test_connection_string_wins_over_sqlite() -> None:
    settings = Settings(connection_string="Host=h;Database=d")
    assert database_target(settings).backend == "postgresql"
    assert database_target(Settings()).backend == "sqlite"


def test_a_stray_chunk_is_named() -> None:
    with pytest.raises(ConfigError, match="'word' is not key=value"):
        postgres_target("Host=db;Database=x;Password=a;word")
