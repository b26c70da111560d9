"""Sessions shared through Redis by two replicas, and the SQL fallback through a Redis outage."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis.asyncio as aioredis

from app import sessions
from tests.conftest import ADMIN_PASSWORD, RunningApp, running
from tests.support.servers import Postgres, Redis

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("patient_announcements")]


async def _replicas(stack: AsyncExitStack, settings: Any) -> tuple[RunningApp, RunningApp]:
    apps = []
    for name in ("replica-a", "replica-b"):
        generator = running(settings.model_copy(update={"instance_id": name}))
        apps.append(await generator.__anext__())
        stack.push_async_callback(generator.aclose)
    return apps[0], apps[1]


def _shared_settings(make_settings: Any, postgres: Postgres, redis: Redis, **extra: Any) -> Any:
    return make_settings(
        connection_string=postgres.url,
        redis_connection_string=redis.url,
        redis_probe_interval_seconds=0.1,
        **extra,
    )


async def _me(app: RunningApp, token: str) -> int:
    response = await app.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def _wait_for_redis(app: RunningApp, up: bool) -> None:
    async with asyncio.timeout(10):
        while (app.services.sessions.redis_report()["status"] == "up") != up:
            await asyncio.sleep(0.05)


async def test_logout_on_one_replica_is_honoured_by_the_other(
    fresh_postgres: Postgres, redis_server: Redis, make_settings
) -> None:
    settings = _shared_settings(make_settings, fresh_postgres, redis_server)
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, settings)
        tokens = await a.login()
        assert await _me(b, tokens["accessToken"]) == 200
        await _wait_for_redis(b, up=True)  # a probe slower than its timeout marks Redis down until the next
        assert b.services.sessions.redis_report()["sessionBackend"] == "redis"
        await a.client.post("/api/auth/logout", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        assert await _me(b, tokens["accessToken"]) == 401
        client = aioredis.from_url(redis_server.url)
        assert await client.exists(f"codex:revoked:{_jti(tokens)}") == 1
        await client.aclose()


def _jti(tokens: dict[str, Any]) -> str:
    import jwt

    return str(jwt.decode(tokens["accessToken"], options={"verify_signature": False})["jti"])


async def test_redis_only_sessions_revoke_across_replicas(
    fresh_postgres: Postgres, redis_server: Redis, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the fallback a Redis call slower than the app's 0.5 s is a 503: a niced shard on a busy
    # machine must not trip it. A stopped Redis still refuses at once.
    monkeypatch.setattr(sessions, "REDIS_TIMEOUT_SECONDS", 10.0)
    settings = _shared_settings(make_settings, fresh_postgres, redis_server, session_storage_enable_fallback=False)
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, settings)
        tokens = await a.login()
        assert await _me(b, tokens["accessToken"]) == 200
        await b.client.post("/api/auth/logout", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        assert await _me(a, tokens["accessToken"]) == 401
        redis_server.stop()
        try:
            refused = await a.client.post("/api/auth/login", json={"username": "admin", "password": "x"})
            assert refused.status_code in (401, 503)
            login = await a.client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            assert login.status_code == 503 and login.json()["error"] == "sessions_unavailable"
        finally:
            redis_server.start()


async def test_redis_outage_falls_back_to_sql_and_loses_nothing(
    fresh_postgres: Postgres, redis_server: Redis, make_settings
) -> None:
    settings = _shared_settings(make_settings, fresh_postgres, redis_server)
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, settings)
        before = await a.login()  # a session from before the outage
        ended_before = await a.login()

        redis_server.stop()
        await _wait_for_redis(a, up=False)
        await _wait_for_redis(b, up=False)
        health = (await a.client.get("/health")).json()
        assert health["redis"] == health["redis"] | {"status": "down", "fallbackActive": True}
        assert health["status"] == "degraded" and "fallback active" in " ".join(health["issues"])

        during = await a.login()  # created while Redis is down
        assert await _me(b, during["accessToken"]) == 200
        assert await _me(b, before["accessToken"]) == 200  # older sessions are still honoured
        await b.client.post("/api/auth/logout", headers={"Authorization": f"Bearer {ended_before['accessToken']}"})
        assert await _me(a, ended_before["accessToken"]) == 401  # a revocation in the outage
        assert "codex_session_fallback_active 1.0" in (await a.client.get("/metrics")).text

        redis_server.start()
        await _wait_for_redis(a, up=True)
        await _wait_for_redis(b, up=True)
        for app in (a, b):
            assert await _me(app, during["accessToken"]) == 200
            assert await _me(app, before["accessToken"]) == 200
            assert await _me(app, ended_before["accessToken"]) == 401
        client = aioredis.from_url(redis_server.url)
        assert await client.exists(f"codex:revoked:{_jti(ended_before)}") == 1  # copied back
        assert await client.exists(f"codex:session:{_sid(during)}") == 1
        await client.aclose()
        synced = (
            a.services.sessions.redis_report()["recordsSyncedAfterOutage"]
            + b.services.sessions.redis_report()["recordsSyncedAfterOutage"]
        )
        assert synced >= 2  # both replicas may copy the same rows; the copies are idempotent
        assert "codex_session_fallback_active 0.0" in (await a.client.get("/metrics")).text


def _sid(tokens: dict[str, Any]) -> str:
    return str(tokens["refreshToken"]).split(".")[0]
