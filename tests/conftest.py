"""Shared fixtures: settings in a temporary directory, in-process apps, real servers."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app import authview
from app.config import Settings
from app.main import create_app
from app.services import Services
from tests.support.servers import Postgres, Redis, remove_postgres, start_postgres, start_redis

ADMIN_PASSWORD = "tests-admin-Vq7nR2xKp9Lw4Zt"  # strong enough for Staging and Production too
SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings that ignore the machine's environment: SQLite and logs under tmp_path."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "Development",
            "sqlite_connection_string": f"Data Source={tmp_path / 'codex.db'}",
            "log_dir": str(tmp_path / "logs"),
            "jwt_secret": "test-secret-" + "x" * 40,
            "admin_password": ADMIN_PASSWORD,
            "memory_sample_interval_seconds": 60.0,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


class RunningApp:
    """An app started through its lifespan, with an HTTP client and helpers."""

    def __init__(self, client: httpx.AsyncClient, services: Services) -> None:
        self.client, self.services = client, services

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, Any]:
        response = await self.client.post("/api/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def bearer(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
        tokens = await self.login(username, password)
        return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def running(settings: Settings, **kwargs: Any) -> AsyncGenerator[RunningApp, None]:
    app = create_app(settings, **kwargs)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://codex.test") as client:
            yield RunningApp(client, app.state.services)


@pytest.fixture
async def codex(make_settings: SettingsFactory) -> AsyncIterator[RunningApp]:
    async for app in running(make_settings()):
        yield app


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    try:
        yield server
    finally:
        remove_postgres(server)


@pytest.fixture
def fresh_postgres(postgres: Postgres) -> Postgres:
    postgres.recreate_database()
    return postgres


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def patient_announcements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Announcements get 10 s to publish and to be acknowledged: the app's 0.3 s and 0.5 s are meant for
    a sick Redis, and a busy machine must not trip them in a test of a change reaching another replica.
    A stopped Redis still refuses at once; a test of a frozen one puts the app's values back."""
    monkeypatch.setattr(authview, "PUBLISH_TIMEOUT_SECONDS", 10.0)
    monkeypatch.setattr(authview, "ACK_TIMEOUT_SECONDS", 10.0)
