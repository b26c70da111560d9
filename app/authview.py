"""Each replica's local view of account state and ended sessions, kept current over Redis pub/sub.

The per-request auth check reads this view instead of Redis. A change (role, disabled, deleted,
logout, a session ended for theft) is applied here at once by the replica that made it and published
on CHANNEL; the other replicas apply the message on receipt and acknowledge it, and the replica
that made the change waits (at most ACK_TIMEOUT_SECONDS) until every subscriber has, so the change
holds on whichever replica the client's next request reaches; a change not every subscriber
acknowledged is answered only once no other view can still trust itself (see _announce). A full
resync from SQL and Redis runs on every (re)subscribe and every third of
AUTH_VIEW_MAX_STALENESS_SECONDS, and the view is trusted only while it is subscribed and its last
successful resync began less than AUTH_VIEW_MAX_STALENESS_SECONDS ago. So a change whose message was
lost is honoured everywhere within that bound; while the view is not trusted (no Redis configured,
Redis down or frozen, resync failing) every request checks SQL and the session store itself, and
nothing stale is trusted.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.pubsub import REDIS_ERRORS, follow
from app.sessions import SessionStore
from app.storage.database import reader
from app.storage.schema import users

log = logging.getLogger("codex.authview")
CHANNEL = "codex:auth"
MAX_CACHED_USERS = 10_000
PUBLISH_TIMEOUT_SECONDS = 0.3
ACK_TIMEOUT_SECONDS = 0.5
ACK_KEY = "codex:auth:ack:"


@dataclass(frozen=True)
class UserState:
    id: int
    username: str
    role: str
    disabled: bool
    stamp: str


def _state(row: Any) -> UserState:
    return UserState(row.id, row.username, row.role, bool(row.disabled), row.security_stamp)


async def load_user(engine: AsyncEngine, user_id: int) -> UserState | None:
    """The account as stored now (None when deleted)."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return _state(row) if row else None


class AuthView:
    def __init__(self, engine: AsyncEngine, store: SessionStore, redis_url: str | None, max_staleness: float) -> None:
        # Its reads are one statement each: autocommit, no transaction around them.
        self.engine, self.store, self.max_staleness = reader(engine), store, max_staleness
        self.users: dict[int, UserState | None] = {}
        self.ended: dict[str, float] = {}  # session id -> until (epoch s)
        self.generation = 0  # bumped by every user message: a resync read before it is not applied
        self.subscribed = False
        self.synced_at = float("-inf")  # monotonic start of the last successful full resync
        self.resyncs = 0
        self._redis = aioredis.from_url(redis_url, socket_connect_timeout=0.5) if redis_url else None
        self.publish_ok = True
        self._tasks: list[asyncio.Task[None]] = []

    # -- trust -------------------------------------------------------------------------
    @property
    def trusted(self) -> bool:
        return self.subscribed and time.monotonic() - self.synced_at < self.max_staleness

    # -- the per-request questions -------------------------------------------------------
    async def user(self, user_id: int) -> UserState | None:
        if not self.trusted:
            return await load_user(self.engine, user_id)
        if user_id in self.users:
            return self.users[user_id]
        generation = self.generation
        state = await load_user(self.engine, user_id)
        if generation == self.generation and len(self.users) < MAX_CACHED_USERS:
            self.users[user_id] = state
        return state

    def known(self, user_id: int, sid: str) -> UserState | None:
        """The account as cached, when the view is trusted, holds it, and the session has not ended:
        an answer without any I/O. None means: ask user() and session_ended()."""
        if not self.trusted or self._ended_here(sid):
            return None
        return self.users.get(user_id)

    def _ended_here(self, sid: str) -> bool:
        return self.ended.get(sid, 0.0) > time.time()

    async def session_ended(self, sid: str, jti: str) -> bool:
        if self.trusted:
            return self._ended_here(sid)
        return await self.store.is_revoked(jti) or await self.store.get(sid) is None

    # -- changes made here ---------------------------------------------------------------
    async def user_changed(self, user_id: int, *, takes_access: bool = True) -> None:
        """takes_access=False for a change that grants nothing away (a new account): never waited out."""
        await self._announce(f"user:{user_id}", outlast_views=takes_access)

    async def session_ended_now(self, sid: str, until: float) -> None:
        await self._announce(f"session:{sid}:{until}")

    async def _announce(self, message: str, *, outlast_views: bool = True) -> None:
        """Apply here, publish, and wait until every subscribed replica has applied it, before the
        change is answered. After a failed publish, skip until a resync proves Redis answers again;
        the resync covers what was skipped.

        A change no replica confirmed (Redis frozen or down, a replica silent or of the previous
        release) is answered only once every other view has either applied it or stopped trusting
        itself: a view is trusted for max_staleness after a resync began, and a resync that began
        after the change (already in SQL and the session store) reads it. So the client's next
        request meets the change on any replica, at the price of a wait of up to max_staleness."""
        began = time.monotonic()
        self._apply(message)
        if self._redis is None:
            return  # no channel: no replica's view is ever trusted, each checks SQL
        if not await self._publish(message) and outlast_views:
            await self._outlast_other_views(began)

    async def _outlast_other_views(self, began: float) -> None:
        left = self.max_staleness - (time.monotonic() - began)
        if left > 0:
            log.warning("auth change unconfirmed: answered in %.1f s, once no other view can trust itself", left)
            await asyncio.sleep(left)

    async def _publish(self, message: str) -> bool:
        """Publish the change and an ack request; True when every subscriber acknowledged it."""
        if self._redis is None or not self.publish_ok:
            return False
        ack_id = secrets.token_hex(8)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                # The change as it always was (a replica of the previous release applies it too),
                # then the ack request: one channel keeps order, so an ack follows its change.
                pipe.publish(CHANNEL, message)
                pipe.publish(CHANNEL, f"ack:{ack_id}")
                _, receivers = await asyncio.wait_for(pipe.execute(), timeout=PUBLISH_TIMEOUT_SECONDS)
        except REDIS_ERRORS as exc:
            self.publish_ok = False
            log.warning("auth change not published; replicas pick it up at their next resync: %s", exc)
            return False
        return await self._await_acks(ack_id, int(receivers))

    async def _await_acks(self, ack_id: str, receivers: int) -> bool:
        """PUBLISH only says how many sockets got the message; the ack says the view applied it.
        A replica that does not ack in time still honours the change within the staleness bound.
        Bounded by the loop's own deadline, not by cancelling a Redis call alone: redis-py can turn a
        cancellation into a retried command, and an outer timeout fires only once (a CI run hung here)."""
        assert self._redis is not None
        deadline, acked = time.monotonic() + ACK_TIMEOUT_SECONDS, 0
        while (left := deadline - time.monotonic()) > 0:
            try:
                acked = int(await asyncio.wait_for(self._redis.get(ACK_KEY + ack_id), timeout=left) or 0)
            except REDIS_ERRORS as exc:  # includes the timeout
                log.warning("auth change acknowledgements unreadable: %r", exc)
                return False
            if acked >= receivers:
                return True
            await asyncio.sleep(0.002)
        log.warning("auth change applied by %d of %d replicas before answering", acked, receivers)
        return False

    async def _receive(self, message: str) -> None:
        kind, _, ack_id = message.partition(":")
        if kind != "ack":
            self._apply(message)
            return
        if self._redis is None:
            return
        try:  # every earlier message on the channel is applied by now
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(ACK_KEY + ack_id)
                pipe.expire(ACK_KEY + ack_id, 60)
                await asyncio.wait_for(pipe.execute(), timeout=ACK_TIMEOUT_SECONDS)  # the listener waits on it
        except REDIS_ERRORS as exc:
            log.debug("auth change applied but not acknowledged: %s", exc)

    def _apply(self, message: str) -> None:
        kind, _, rest = message.partition(":")
        if kind == "user" and rest.isdigit():
            self.generation += 1
            self.users.pop(int(rest), None)
        elif kind == "session":
            sid, _, until = rest.rpartition(":")
            try:
                self.ended[sid] = max(self.ended.get(sid, 0.0), float(until))
            except ValueError:
                log.warning("malformed auth message ignored")

    # -- keeping the view current --------------------------------------------------------
    async def start(self) -> None:
        if self._redis is not None:
            listen = follow(
                self._redis,
                CHANNEL,
                on_subscribe=self._subscribed,
                on_message=self._receive,
                on_lost=self._unsubscribed,
            )
            self._tasks = [asyncio.create_task(listen, name="authview.listen")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._redis is not None:
            await self._redis.aclose()

    async def resync(self) -> bool:
        """Reload cached accounts and every ended session; trusted again only if all of it answered."""
        began = time.monotonic()
        generation = self.generation
        ids = list(self.users)  # the accounts cached when it began; those cached meanwhile are as fresh
        try:
            async with asyncio.timeout(max(1.0, self.max_staleness / 3)):
                ended = await self.store.ended_sessions()
                fresh: dict[int, UserState | None] = dict.fromkeys(ids)
                if ids:
                    async with self.engine.connect() as conn:
                        for row in await conn.execute(select(users).where(users.c.id.in_(ids))):
                            fresh[row.id] = _state(row)
        except (*REDIS_ERRORS, SQLAlchemyError) as exc:
            log.debug("auth view resync failed: %s", exc)
            return False
        now = time.time()
        self.ended = {sid: until for sid, until in {**self.ended, **ended}.items() if until > now}
        if generation != self.generation:
            return False  # a change arrived meanwhile: what was read may predate it
        # An account cached while this ran was read with no change announced since: keep it.
        self.users = {**self.users, **fresh}
        self.synced_at = began
        self.publish_ok = self._redis is not None
        self.resyncs += 1
        return True

    async def _subscribed(self) -> None:
        self.subscribed = True
        await self.resync()  # whatever was published while unsubscribed is in SQL/Redis

    def _unsubscribed(self, exc: Exception) -> None:
        if self.subscribed:
            log.warning("auth view unsubscribed, every request checks SQL/Redis until back: %s", exc)
        self.subscribed = False

    def health(self) -> dict[str, Any]:
        return {
            "trusted": self.trusted,
            "subscribed": self.subscribed,
            "maxStalenessSeconds": self.max_staleness,
            "secondsSinceResync": round(time.monotonic() - self.synced_at, 3) if self.resyncs else None,
            "cachedUsers": len(self.users),
            "endedSessions": len(self.ended),
        }
