"""Writes do not wait on a Redis that is down (issue 8, 11); the other replica hears of them afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.conftest import RunningApp, SettingsFactory, running
from tests.support.servers import Postgres, Redis

pytestmark = pytest.mark.integration


async def _replica(stack: AsyncExitStack, settings: Any, name: str) -> RunningApp:
    generator = running(settings.model_copy(update={"instance_id": name}))
    app = await generator.__anext__()
    stack.push_async_callback(generator.aclose)
    return app


async def test_writes_skip_the_broadcast_while_redis_is_frozen(
    fresh_postgres: Postgres, redis_server: Redis, make_settings: SettingsFactory
) -> None:
    settings = make_settings(connection_string=fresh_postgres.url, redis_connection_string=redis_server.url)
    async with AsyncExitStack() as stack:
        a = await _replica(stack, settings, "replica-a")
        b = await _replica(stack, settings, "replica-b")
        h = await a.bearer()
        await a.client.post("/api/nodes", headers=h, json={"id": "n", "typeId": "t", "title": "before"})
        assert (await b.client.get("/api/nodes/n", headers=h)).json()["title"] == "before"  # cached on b

        publishes = 0
        redis = a.services.cache._redis
        assert redis is not None
        real_publish = redis.publish

        async def counting_publish(*args: Any, **kwargs: Any) -> Any:
            nonlocal publishes
            publishes += 1
            return await real_publish(*args, **kwargs)

        redis.publish = counting_publish  # type: ignore[method-assign]
        assert redis_server.process is not None
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            for i in range(6):
                response = await a.client.put("/api/nodes/n", headers=h, json={"title": f"during-{i}"})
                assert response.status_code == 200, response.text
            elapsed = time.monotonic() - began
            # Six writes, one publish attempt in flight plus one retry per 1.5 s (0.5 s timeout, 1 s
            # pause), not one per write: none waited on Redis.
            assert publishes <= 2 + int(elapsed / 1.5), (publishes, elapsed)
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        # The broadcaster retries until it gets through. b may drop its stale read before that: a publish
        # that timed out while Redis was frozen is still delivered once it thaws. Both are waited for.
        async with asyncio.timeout(10):
            while (
                not a.services.cache.broadcast_ok
                or (await b.client.get("/api/nodes/n", headers=h)).json()["title"] != "during-5"
            ):
                await asyncio.sleep(0.1)
