"""Distributed sessions and token revocations: Redis shared by every replica, SQL as the fallback.

SQL is the durable record when SESSION_STORAGE_ENABLE_FALLBACK is on: every write goes to SQL too,
and rows written while Redis was unreachable are flagged `pending_sync` and copied to Redis when it
answers again. Nothing is lost in either direction of an outage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.metrics import Metrics
from app.modules import Module
from app.storage.module import StorageModule
from app.storage.schema import revoked_tokens, sessions
from app.timeutil import as_utc, utcnow

log = logging.getLogger("codex.sessions")
SESSION_KEY = "codex:session:"
REVOKED_KEY = "codex:revoked:"
ENDED_KEY = "codex:ended-sessions"  # sorted set: session id -> until when its tokens could live (epoch s)
REDIS_TIMEOUT_SECONDS = 0.5


class SessionStoreUnavailable(RuntimeError):
    """Redis is down and the SQL fallback is disabled."""


@dataclass
class SessionRecord:
    sid: str
    user_id: int
    username: str
    role: str
    refresh_hash: str
    created_at: datetime
    expires_at: datetime
    stamp: str = ""  # the user's security stamp when the session opened

    def to_json(self) -> str:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["expires_at"] = self.expires_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionRecord:
        data = json.loads(text)
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        return cls(**data)

    @classmethod
    def from_row(cls, row: Any) -> SessionRecord:
        return cls(
            row.sid,
            row.user_id,
            row.username,
            row.role,
            row.refresh_hash,
            as_utc(row.created_at),
            as_utc(row.expires_at),
            row.stamp,
        )

    def ttl_seconds(self) -> int:
        return max(1, int((self.expires_at - utcnow()).total_seconds()))


class SessionStore:
    """Sessions and revocations on Redis, SQL, or both (see the module docstring)."""

    def __init__(
        self, engine: AsyncEngine | None, redis: aioredis.Redis | None, fallback: bool, metrics: Metrics
    ) -> None:
        self.engine = engine if fallback or redis is None else None
        self.redis = redis
        self.metrics = metrics
        self.redis_ok = redis is not None
        self.last_redis_error: str | None = None
        self.synced_records = 0

    # -- state ---------------------------------------------------------------------------
    @property
    def fallback_active(self) -> bool:
        """Sessions are served from SQL: Redis is not configured or not answering."""
        return not self.redis_ok and self.engine is not None

    def _redis_failed(self, exc: Exception) -> None:
        if self.redis_ok:
            log.warning("Redis unreachable, sessions fall back to SQL: %s", exc)
        self.redis_ok = False
        self.last_redis_error = f"{type(exc).__name__}: {exc}"
        self.metrics.session_fallback.set(1 if self.engine is not None else 0)
        self.metrics.redis_up.set(0)

    def _sql(self) -> AsyncEngine:
        if self.engine is None:
            raise SessionStoreUnavailable("Redis is unreachable and the SQL fallback is off")
        return self.engine

    async def _redis_call(self, method: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        """Call Redis if it is believed up; (False, None) when it is not or the call fails."""
        if self.redis is None or not self.redis_ok:
            if self.engine is None:
                raise SessionStoreUnavailable("Redis is unreachable and the SQL fallback is off")
            return False, None
        try:
            return True, await getattr(self.redis, method)(*args, **kwargs)
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(exc)
            if self.engine is None:
                raise SessionStoreUnavailable("Redis is unreachable and the SQL fallback is off") from exc
            return False, None

    # -- sessions ------------------------------------------------------------------------
    async def create(self, record: SessionRecord) -> None:
        stored, _ = await self._redis_call("set", SESSION_KEY + record.sid, record.to_json(), ex=record.ttl_seconds())
        if self.engine is not None:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(sessions).values(**{k: v for k, v in asdict(record).items()}, pending_sync=not stored)
                )

    async def get(self, sid: str) -> SessionRecord | None:
        ok, value = await self._redis_call("get", SESSION_KEY + sid)
        if ok and value is not None:
            return SessionRecord.from_json(value)
        if self.engine is None:
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(sessions).where(sessions.c.sid == sid, sessions.c.expires_at > utcnow()))
            ).first()
        return SessionRecord.from_row(row) if row else None

    async def rotate_refresh(self, record: SessionRecord, new_hash: str) -> bool:
        """Swap the refresh-token hash if it is still the one presented (one use per token)."""
        old_hash, record.refresh_hash = record.refresh_hash, new_hash
        if self.engine is not None:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    update(sessions)
                    .where(sessions.c.sid == record.sid, sessions.c.refresh_hash == old_hash)
                    .values(refresh_hash=new_hash)
                )
            if result.rowcount == 0:
                return False
        stored, _ = await self._redis_call("set", SESSION_KEY + record.sid, record.to_json(), ex=record.ttl_seconds())
        if not stored and self.engine is not None:
            async with self.engine.begin() as conn:
                await conn.execute(update(sessions).where(sessions.c.sid == record.sid).values(pending_sync=True))
        return True

    # -- revocation ----------------------------------------------------------------------
    async def revoke(self, jti: str, sid: str | None, expires_at: datetime) -> None:
        """Refuse this token everywhere until expires_at, and end its session (no token of it after)."""
        ttl = max(1, int((expires_at - utcnow()).total_seconds()))
        stored, _ = await self._redis_call("set", REVOKED_KEY + jti, "1", ex=ttl)
        if stored and sid:
            await self._redis_call("delete", SESSION_KEY + sid)
            await self._redis_call("zadd", ENDED_KEY, {sid: expires_at.timestamp()})
        if self.engine is None:
            return
        async with self.engine.begin() as conn:
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(revoked_tokens).values(jti=jti, sid=sid, expires_at=expires_at, pending_sync=not stored)
                    )
            except IntegrityError:
                pass  # revoked already
            if sid:
                await conn.execute(delete(sessions).where(sessions.c.sid == sid))

    async def end_session(self, sid: str, until: datetime) -> None:
        """End a session without a token in hand (a reused refresh token, a disabled account)."""
        await self.revoke(f"session-{sid}", sid, until)

    async def ended_sessions(self) -> dict[str, float]:
        """Every ended session whose tokens may still be unexpired: sid -> until (epoch s), for a full resync.

        Reads SQL when it holds revocations and Redis when configured; raises when Redis does not answer,
        so a resync never passes for complete when it is not.
        """
        now = utcnow()
        ended: dict[str, float] = {}
        if self.engine is not None:
            async with self.engine.connect() as conn:
                rows = await conn.execute(
                    select(revoked_tokens.c.sid, revoked_tokens.c.expires_at).where(
                        revoked_tokens.c.sid.is_not(None), revoked_tokens.c.expires_at > now
                    )
                )
                for row in rows:
                    ended[row.sid] = max(ended.get(row.sid, 0.0), as_utc(row.expires_at).timestamp())
        if self.redis is not None:
            members: list[Any] = await self.redis.zrangebyscore(ENDED_KEY, now.timestamp(), "+inf", withscores=True)
            for member, score in members:
                sid = member.decode() if isinstance(member, bytes) else str(member)
                ended[sid] = max(ended.get(sid, 0.0), float(score))
        return ended

    async def is_revoked(self, jti: str) -> bool:
        ok, value = await self._redis_call("exists", REVOKED_KEY + jti)
        if ok:
            return bool(value)
        async with self._sql().connect() as conn:
            found = await conn.scalar(select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti))
        return found is not None

    # -- Redis recovery ------------------------------------------------------------------
    async def probe(self) -> bool:
        """PING Redis; on recovery, copy what was written during the outage, then use Redis again."""
        if self.redis is None:
            return False
        try:
            await self.redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            if self.redis_ok:
                self._redis_failed(exc)
            else:
                self.last_redis_error = f"{type(exc).__name__}: {exc}"
            return False
        if self.engine is not None:
            try:
                copied = await self._sync_pending(self.redis, self.engine)
            except (RedisError, OSError, TimeoutError) as exc:
                self.last_redis_error = f"{type(exc).__name__}: {exc}"
                return False
            if copied or not self.redis_ok:
                log.info("Redis answers again; %d records copied from SQL", copied)
        self.redis_ok = True
        self.metrics.redis_up.set(1)
        self.metrics.session_fallback.set(0)
        return True

    async def _sync_pending(self, redis: aioredis.Redis, engine: AsyncEngine) -> int:
        now = utcnow()
        async with engine.connect() as conn:
            pending_sessions = (await conn.execute(select(sessions).where(sessions.c.pending_sync.is_(True)))).all()
            pending_revocations = (
                await conn.execute(select(revoked_tokens).where(revoked_tokens.c.pending_sync.is_(True)))
            ).all()
        if not pending_sessions and not pending_revocations:
            return 0
        async with redis.pipeline(transaction=False) as pipe:
            for row in pending_sessions:
                record = SessionRecord.from_row(row)
                if record.expires_at > now:
                    pipe.set(SESSION_KEY + record.sid, record.to_json(), ex=record.ttl_seconds())
            for row in pending_revocations:
                ttl = int((as_utc(row.expires_at) - now).total_seconds())
                if ttl > 0:
                    pipe.set(REVOKED_KEY + row.jti, "1", ex=ttl)
                if row.sid:
                    pipe.delete(SESSION_KEY + row.sid)
                    pipe.zadd(ENDED_KEY, {row.sid: as_utc(row.expires_at).timestamp()})
            await pipe.execute()
        async with engine.begin() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.sid.in_([r.sid for r in pending_sessions])).values(pending_sync=False)
            )
            await conn.execute(
                update(revoked_tokens)
                .where(revoked_tokens.c.jti.in_([r.jti for r in pending_revocations]))
                .values(pending_sync=False)
            )
        copied = len(pending_sessions) + len(pending_revocations)
        self.synced_records += copied
        return copied

    # -- housekeeping --------------------------------------------------------------------
    async def cleanup_expired(self) -> int:
        """Delete expired sessions and revocations from SQL (Redis expires its keys by TTL)."""
        now = utcnow()
        await self._redis_call("zremrangebyscore", ENDED_KEY, "-inf", now.timestamp())
        if self.engine is None:
            return 0
        async with self.engine.begin() as conn:
            a = await conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            b = await conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at <= now))
        return int(a.rowcount or 0) + int(b.rowcount or 0)

    async def counts(self) -> tuple[int, int]:
        """Unexpired (sessions, revocations)."""
        if self.engine is not None:
            now = utcnow()
            async with self.engine.connect() as conn:
                active = await conn.scalar(
                    select(func.count()).select_from(sessions).where(sessions.c.expires_at > now)
                )
                revoked = await conn.scalar(
                    select(func.count()).select_from(revoked_tokens).where(revoked_tokens.c.expires_at > now)
                )
            return int(active or 0), int(revoked or 0)
        assert self.redis is not None
        return (await self._count_keys(SESSION_KEY), await self._count_keys(REVOKED_KEY))

    async def _count_keys(self, prefix: str) -> int:
        assert self.redis is not None
        return sum([1 async for _ in self.redis.scan_iter(match=prefix + "*", count=1000)])


class SessionsModule(Module):
    name = "sessions"
    requires = ("storage",)

    def __init__(self, settings: Settings, storage: StorageModule, metrics: Metrics) -> None:
        super().__init__()
        self.settings, self.storage_module, self.metrics = settings, storage, metrics
        self._store: SessionStore | None = None

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            raise RuntimeError("sessions are not started")
        return self._store

    async def start(self) -> None:
        redis = None
        if self.settings.sessions_use_redis:
            assert self.settings.redis_connection_string
            redis = aioredis.from_url(
                self.settings.redis_connection_string,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        store = SessionStore(
            self.storage_module.engine, redis, self.settings.session_storage_enable_fallback, self.metrics
        )
        if redis is not None and not await store.probe() and store.engine is None:
            await redis.aclose()
            raise SessionStoreUnavailable(
                f"Redis at {self.settings.redis_connection_string} does not answer and "
                "SESSION_STORAGE_ENABLE_FALLBACK is false"
            )
        self.metrics.session_fallback.set(1 if store.fallback_active else 0)
        self._store = store
        if redis is not None:
            self.every(self.settings.redis_probe_interval_seconds, store.probe, "redis-probe")
        self.every(self.settings.session_cleanup_interval_seconds, self.cleanup, "cleanup")

    async def cleanup(self) -> int:
        removed = await self.store.cleanup_expired()
        self.metrics.cleanup_events.labels(self.name).inc()
        self.metrics.cleaned_items.labels(self.name).inc(removed)
        return removed

    async def stop(self) -> None:
        if self._store is not None and self._store.redis is not None:
            await self._store.redis.aclose()

    def redis_report(self) -> dict[str, Any]:
        if self._store is None:
            return {"status": "unknown", "fallbackActive": False}
        store = self._store
        status = "not_configured" if store.redis is None else "up" if store.redis_ok else "down"
        report: dict[str, Any] = {
            "status": status,
            "fallbackActive": store.fallback_active,
            "fallbackEnabled": self.settings.session_storage_enable_fallback,
            "sessionBackend": "redis" if store.redis_ok else "sql",
            "recordsSyncedAfterOutage": store.synced_records,
        }
        if store.last_redis_error and not store.redis_ok:
            report["error"] = store.last_redis_error[:300]
        return report

    def health(self) -> dict[str, Any]:
        return self.redis_report()
