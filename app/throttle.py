"""Login throttling per (account, client address) with growing delays; never a lockout.

Each attempt is counted before the password is checked, in one conditional UPDATE: a burst of
parallel guesses cannot all pass the check before the count catches up. The first
AUTH_MAX_FAILED_LOGINS attempts since the last success are free; after that each attempt from that
address makes the next wait 1, 2, 4 ... seconds, at most AUTH_LOCKOUT_MINUTES. A stranger's guesses
slow only the stranger's own address; the account's owner, from another address, is not delayed.
When the account as a whole has seen AUTH_ACCOUNT_CEILING failures, every new address gets one free
attempt instead of AUTH_MAX_FAILED_LOGINS: a client with the right password still gets in at once.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import ColumnElement, and_, case, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.storage.schema import login_throttle as throttle

STALE_AFTER_SECONDS = 24 * 3600  # rows quiet this long are forgotten


def _delay_sql(attempts: ColumnElement[int], free: int, max_delay: float) -> ColumnElement[float]:
    """0 s before the `free`-th attempt, then 1, 2, 4 ... s up to max_delay, as a CASE expression:
    the count and the next allowed time change in one statement."""
    whens: list[tuple[ColumnElement[bool], float]] = [(attempts < free, 0.0)]
    step = 0
    while 2**step < max_delay:
        whens.append((attempts == free + step, float(2**step)))
        step += 1
    return case(*whens, else_=float(max_delay))


class LoginThrottle:
    def __init__(self, engine: AsyncEngine, max_delay_seconds: float) -> None:
        self.engine, self.max_delay = engine, max_delay_seconds

    def _key(self, username: str, client: str) -> ColumnElement[bool]:
        return and_(throttle.c.username == username, throttle.c.client == client)

    async def _ensure_row(self, conn: AsyncConnection, username: str, client: str, now: float) -> None:
        values = {"username": username, "client": client, "attempts": 0, "next_at": 0.0, "updated_at": now}
        if conn.dialect.name == "postgresql":
            await conn.execute(pg_insert(throttle).values(**values).on_conflict_do_nothing())
        elif conn.dialect.name == "sqlite":
            await conn.execute(sqlite_insert(throttle).values(**values).on_conflict_do_nothing())
        else:  # pragma: no cover - only the two backends above are supported
            await conn.execute(insert(throttle).values(**values))

    async def admit(self, username: str, client: str, free: int) -> int | None:
        """Count this attempt; None when it may proceed, else the seconds until one may."""
        now = time.time()
        key = self._key(username, client)
        async with self.engine.begin() as conn:
            await self._ensure_row(conn, username, client, now)
            attempt = throttle.c.attempts + 1
            admitted = await conn.scalar(
                update(throttle)
                .where(key, throttle.c.next_at <= now)
                .values(
                    attempts=attempt,
                    next_at=now + _delay_sql(attempt, free, self.max_delay),
                    updated_at=now,
                )
                .returning(throttle.c.attempts)
            )
            if admitted is not None:
                return None
            next_at = await conn.scalar(select(throttle.c.next_at).where(key))
        return max(1, math.ceil((next_at or now) - now))

    async def succeeded(self, username: str, client: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(throttle).where(self._key(username, client)))

    async def forget_account(self, username: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(throttle).where(throttle.c.username == username))

    async def cleanup(self) -> int:
        now = time.time()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(throttle).where(throttle.c.updated_at < now - STALE_AFTER_SECONDS, throttle.c.next_at < now)
            )
        return int(result.rowcount or 0)
