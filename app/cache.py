"""Response caching for read routes: TTL and size bound, invalidated by writes, ETag and 304.

Writes clear the local cache at once and tell the other replicas over Redis pub/sub when Redis is
configured; without it, another replica may serve a stale read for at most CACHE_TTL_SECONDS.
The broadcast runs in the background, coalesced: a write never waits on Redis, and while Redis is
away the broadcaster retries every second and sends one invalidation when it answers again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from cachetools import TTLCache
from fastapi import Request, Response

from app.config import Settings
from app.metrics import Metrics
from app.modules import Module
from app.pubsub import REDIS_ERRORS, follow
from app.rendering import render_json

log = logging.getLogger("codex.cache")
CHANNEL = "codex:cache:invalidate"


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    etag: str


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class CacheModule(Module):
    name = "cache"

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        super().__init__()
        self.settings, self.metrics = settings, metrics
        self.enabled = settings.enable_response_caching
        # Bounded in bytes and in entries at once: each entry costs its body's length, and at least an
        # equal share of the byte budget, so neither CACHE_MAX_BYTES nor CACHE_MAX_ENTRIES is exceeded.
        self.share = max(1, settings.cache_max_bytes // settings.cache_max_entries)
        self.largest = settings.cache_max_bytes // 16  # bigger bodies are served, never cached
        self.entries: TTLCache[str, CachedBody] = TTLCache(
            maxsize=settings.cache_max_bytes,
            ttl=settings.cache_ttl_seconds,
            getsizeof=lambda entry: max(len(entry.body), self.share),
        )
        # Looked up once: labels() per read costs a lock and a dict lookup on the hottest path.
        self._hits, self._misses, self._not_modified = (
            metrics.cache_requests.labels(result) for result in ("hit", "miss", "not_modified")
        )
        self.invalidations = 0  # also the generation: a read produced before a write is not kept
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._broadcaster: asyncio.Task[None] | None = None
        self._pending = asyncio.Event()
        self.broadcast_ok = True

    async def start(self) -> None:
        if not self.enabled:
            return
        self.every(self.settings.cache_ttl_seconds, self.cleanup, "expire")
        if self.settings.redis_connection_string:
            self._redis = aioredis.from_url(self.settings.redis_connection_string, socket_connect_timeout=0.5)
            listen = follow(
                self._redis,
                CHANNEL,
                on_subscribe=self._resubscribed,
                on_message=lambda _: self.clear_local(),
                on_lost=lambda _: None,  # Redis away: the TTL bounds staleness until it is back
            )
            self._listener = asyncio.create_task(listen, name="cache.invalidation")
            self._broadcaster = asyncio.create_task(self._broadcast(), name="cache.broadcast")

    async def stop(self) -> None:
        for task in (self._listener, self._broadcaster):
            if task is not None:
                task.cancel()  # bounded wait: redis-py can swallow a cancellation
                await asyncio.wait({task}, timeout=5)
        if self._redis is not None:
            await self._redis.aclose()

    async def cleanup(self) -> int:
        before = len(self.entries)
        self.entries.expire()
        removed = before - len(self.entries)
        self.metrics.cleanup_events.labels(self.name).inc()
        self.metrics.cleaned_items.labels(self.name).inc(removed)
        self.metrics.cache_entries.set(len(self.entries))
        return removed

    def clear_local(self) -> None:
        self.entries.clear()
        self.invalidations += 1
        self.metrics.cache_entries.set(0)

    async def invalidate(self) -> None:
        """A write happened: drop cached reads here now, and on every other replica in the background."""
        self.clear_local()
        if self._redis is not None:
            self._pending.set()

    async def _broadcast(self) -> None:
        """Publish pending invalidations; many writes in a burst become one message."""
        assert self._redis is not None
        while True:
            await self._pending.wait()
            self._pending.clear()
            try:
                await asyncio.wait_for(self._redis.publish(CHANNEL, "all"), timeout=0.5)
                self.broadcast_ok = True
            except REDIS_ERRORS as exc:
                if self.broadcast_ok:
                    log.warning("cache invalidation not broadcast, retrying every second: %s", exc)
                self.broadcast_ok = False
                self._pending.set()  # the other replicas still need to hear of it
                await asyncio.sleep(1.0)

    async def _resubscribed(self) -> None:
        self.clear_local()  # invalidations sent while unsubscribed were missed

    async def respond(self, request: Request, key: str, produce: Callable[[], Awaitable[Any]]) -> Response:
        """Serve a JSON read from the cache (or produce it), with ETag and 304 on If-None-Match."""
        cached = self.hit(key)
        if cached is not None:
            return self.answer(cached, "HIT", request.headers.get("if-none-match", ""))
        generation = self.invalidations
        body = render_json(await produce())
        cached = CachedBody(body, _etag(body))
        if self.enabled:
            self._misses.inc()
        if self.enabled and generation == self.invalidations and len(body) <= self.largest:
            self.entries[key] = cached
            self.metrics.cache_entries.set(len(self.entries))
        return self.answer(cached, "MISS", request.headers.get("if-none-match", ""))

    def hit(self, key: str) -> CachedBody | None:
        """The cached body for key, counted as a hit; None (not counted) when it is not cached."""
        cached = self.entries.get(key) if self.enabled else None
        if cached is not None:
            self._hits.inc()
        return cached

    def answer(self, cached: CachedBody, state: str, if_none_match: str) -> Response:
        headers = {"ETag": cached.etag, "Cache-Control": "private, no-cache", "X-Cache": state}
        if cached.etag in if_none_match:
            self._not_modified.inc()
            return Response(status_code=304, headers=headers)
        return Response(cached.body, media_type="application/json", headers=headers)

    def health(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "entries": len(self.entries),
            "maxEntries": self.settings.cache_max_entries,
            "bytes": sum(len(v.body) for v in list(self.entries.values())),
            "maxBytes": self.settings.cache_max_bytes,
            "ttlSeconds": self.settings.cache_ttl_seconds,
            "invalidations": self.invalidations,
            "crossReplicaInvalidation": self._redis is not None,
            "broadcastOk": self.broadcast_ok,
        }
