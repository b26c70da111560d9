"""Login throttling per (account, client address) with growing delays; never a lockout.

The first AUTH_MAX_FAILED_LOGINS failures since the last success are free; after that each failure
from that address makes the next attempt wait 1, 2, 4 ... seconds, at most AUTH_LOCKOUT_MINUTES. A
stranger's guesses slow only the stranger's own address; the account's owner, from another address,
is not delayed. When the account as a whole has seen AUTH_ACCOUNT_CEILING failures, every new address
gets one free failure instead: a client with the right password still gets in at once.

Failures are counted in one UPDATE ... RETURNING (no read-then-write to lose counts), and at most
`free` passwords of one (account, address) are checked at a time per replica; the others wait for a
slot and then see the count their predecessors left. So a parallel burst of guesses gets at most
2 x free - 1 checks per replica (the free ones, and those already admitted while they were counted),
not one per request, while parallel logins with the right password all succeed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import ColumnElement, and_, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.storage.schema import login_throttle as throttle
from app.usernames import username_key

STALE_AFTER_SECONDS = 24 * 3600  # rows quiet this long are forgotten
SLOT_WAIT_SECONDS = 10.0  # a check waiting longer than this for a slot is told to retry


def _delay_sql(attempts: ColumnElement[int], free: int, max_delay: float) -> ColumnElement[float]:
    """0 s after fewer than `free` failures, then 1, 2, 4 ... s up to max_delay, as a CASE expression:
    the count and the next allowed time change in one statement."""
    whens: list[tuple[ColumnElement[bool], float]] = [(attempts < free, 0.0)]
    step = 0
    while 2**step < max_delay:
        whens.append((attempts == free + step, float(2**step)))
        step += 1
    return case(*whens, else_=float(max_delay))


def _account(username: str) -> str:
    """The account a login names, as users.username_key compares it: `Admin` and `admin` share their
    delays. Cut to the column's 64 characters (NFKC can lengthen a name); a longer one names no account."""
    return username_key(username)[:64]


class LoginThrottle:
    def __init__(self, engine: AsyncEngine, max_delay_seconds: float) -> None:
        self.engine, self.max_delay = engine, max_delay_seconds
        self._slots: dict[tuple[str, str], tuple[asyncio.Semaphore, list[int]]] = {}

    def _key(self, username: str, client: str) -> ColumnElement[bool]:
        return and_(throttle.c.username == _account(username), throttle.c.client == client)

    @asynccontextmanager
    async def checking(self, username: str, client: str, free: int) -> AsyncIterator[int | None]:
        """Hold one of `free` check slots of this (account, address), then yield None when the password
        may be checked, else the seconds until it may."""
        key = (_account(username), client)
        semaphore, users = self._slots.setdefault(key, (asyncio.Semaphore(max(1, free)), [0]))
        users[0] += 1
        try:
            async with asyncio.timeout(SLOT_WAIT_SECONDS):
                await semaphore.acquire()
        except TimeoutError:
            self._release_key(key, users)
            yield 1
            return
        try:
            yield await self._wait(username, client)
        finally:
            semaphore.release()
            self._release_key(key, users)

    def _release_key(self, key: tuple[str, str], users: list[int]) -> None:
        users[0] -= 1
        if users[0] == 0:
            self._slots.pop(key, None)

    async def _wait(self, username: str, client: str) -> int | None:
        now = time.time()
        async with self.engine.connect() as conn:
            next_at = await conn.scalar(select(throttle.c.next_at).where(self._key(username, client)))
        if next_at is None or next_at <= now:
            return None
        return max(1, math.ceil(float(next_at) - now))

    async def failed(self, username: str, client: str, free: int, conn: AsyncConnection) -> int:
        """Count a failure and set when the next attempt may come, in one statement, on `conn` (the caller
        commits: it took the connection before the password was checked); the new count."""
        now = time.time()
        await self._ensure_row(conn, username, client, now)
        failures = throttle.c.attempts + 1
        counted = await conn.scalar(
            update(throttle)
            .where(self._key(username, client))
            .values(attempts=failures, next_at=now + _delay_sql(failures, free, self.max_delay), updated_at=now)
            .returning(throttle.c.attempts)
        )
        return int(counted or 0)

    async def _ensure_row(self, conn: AsyncConnection, username: str, client: str, now: float) -> None:
        values = {"username": _account(username), "client": client, "attempts": 0, "next_at": 0.0, "updated_at": now}
        if conn.dialect.name == "postgresql":
            await conn.execute(pg_insert(throttle).values(**values).on_conflict_do_nothing())
        else:
            await conn.execute(sqlite_insert(throttle).values(**values).on_conflict_do_nothing())

    async def succeeded(self, username: str, client: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(throttle).where(self._key(username, client)))

    async def forget_account(self, username: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(throttle).where(throttle.c.username == _account(username)))

    async def cleanup(self) -> int:
        now = time.time()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(throttle).where(throttle.c.updated_at < now - STALE_AFTER_SECONDS, throttle.c.next_at < now)
            )
        return int(result.rowcount or 0)
