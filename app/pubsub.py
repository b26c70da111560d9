"""Follow a Redis pub/sub channel for the life of the process, resubscribing after Redis comes back."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

REDIS_ERRORS = (RedisError, OSError, TimeoutError)


async def follow(
    redis: aioredis.Redis,
    channel: str,
    *,
    on_subscribe: Callable[[], Awaitable[object]],
    on_message: Callable[[str], object],  # may return an awaitable: awaited before the next message
    on_lost: Callable[[Exception], object],
    retry_seconds: float = 1.0,
) -> None:
    """on_subscribe after every (re)subscribe, so the caller can catch up on what it missed."""
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                await on_subscribe()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message.get("type") == "message":
                        data = message["data"]
                        handled = on_message(data.decode() if isinstance(data, bytes) else str(data))
                        if inspect.isawaitable(handled):
                            await handled
        except REDIS_ERRORS as exc:
            on_lost(exc)
            await asyncio.sleep(retry_seconds)
