"""API docs off outside Development unless ENABLE_API_DOCS; HEAD on health endpoints; 503s say when."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.main import create_app
from tests.conftest import RunningApp, SettingsFactory, running

STRONG = "q7Vw-2LmZx9RtY4bNc8KjH3pFs6DgA1e"
DOCS = ("/docs", "/redoc", "/openapi.json")


@pytest.mark.parametrize(("environment", "enabled", "expected"), [("Production", None, 404), ("Staging", True, 200)])
async def test_api_docs_follow_the_environment_and_the_setting(
    make_settings: SettingsFactory, environment: str, enabled: bool | None, expected: int
) -> None:
    settings = make_settings(environment=environment, jwt_secret=STRONG, enable_api_docs=enabled)
    async for app in running(settings):
        for path in DOCS:
            assert (await app.client.get(path)).status_code == expected, path
    assert "/api/nodes" in create_app(settings).openapi()["paths"]  # in-process, for tests, either way


async def test_head_on_health_endpoints_answers_like_get(codex: RunningApp) -> None:
    for path in ("/health", "/health/live", "/health/ready", "/health/memory", "/health/ai-pipeline"):
        get = await codex.client.get(path)
        head = await codex.client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.headers["content-type"] == get.headers["content-type"]


async def test_a_503_carries_retry_after_and_json(codex: RunningApp) -> None:
    codex.services.lifecycle = "draining"
    response = await codex.client.get("/health/ready")
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json()["status"] == "not_ready"


async def test_a_redis_failure_outside_the_fallback_is_a_503_with_retry_after(
    codex: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await codex.bearer()

    async def unreachable() -> tuple[int, int]:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(codex.services.sessions.store, "counts", unreachable)
    response = await codex.client.get("/api/admin/sessions", headers=admin)
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json()["error"] == "sessions_unavailable"
