"""The asyncpg anchor: what a user gets from FastAPI on asyncpg by hand, doing the service's own SQL.

One asyncpg pool per replica (the service's pool size), statements prepared once per connection
(asyncpg's statement cache), orjson bodies. Every route verifies the bearer token (PyJWT, the service's
secret and claims); the routes under /auth/ also do the account and session check the service makes
when its replicated auth view is not trusted (app/authview.py): the account row from PostgreSQL, the
revocation and the session from Redis. The routes under /wire/ add the round trip SQLAlchemy makes
around the same statements (PostgreSQL's log_statement shows them; tests/integration/test_round_trips.py):
the pool's pre-ping, an empty query, at every checkout (until 2026-12-07 also BEGIN and ROLLBACK around
the ping and around each read: the service's pool now keeps its connections in autocommit). benchmarks/sql.py holds the
statements; a test checks they are the ones the service issues.
Environment: BENCH_PG_DSN, BENCH_REDIS_URL, BENCH_JWT_SECRET, BENCH_POOL_SIZE.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response

from benchmarks import sql

ISSUER = "living-codex"  # app/identity.py's ISSUER
SESSION_KEY, REVOKED_KEY = "codex:session:", "codex:revoked:"  # app/sessions.py's keys
ROLES = ("viewer", "editor", "admin")


async def _init(conn: asyncpg.Connection) -> None:
    # The service's column type is JSON (text on the wire): orjson both ways.
    await conn.set_type_codec(
        "json", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
    )


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    size = int(os.environ.get("BENCH_POOL_SIZE", "20"))
    # Opened on demand and kept, as the service's pool does (app/storage/database.py): a replica holds
    # what its load needed, so the anchors and the service fit PostgreSQL's 100 connections side by side.
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_PG_DSN"], min_size=1, max_size=size, max_inactive_connection_lifetime=0, init=_init
    )
    app.state.redis = aioredis.from_url(os.environ["BENCH_REDIS_URL"])
    yield
    await app.state.pool.close()
    await app.state.redis.aclose()


app = FastAPI(lifespan=lifespan)
SECRET = os.environ.get("BENCH_JWT_SECRET", "")


def _iso(value: datetime) -> str:
    return value.isoformat()


def node_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "typeId": row["type_id"],
        "title": row["title"],
        "content": row["content"],
        "meta": row["meta"],
        "state": row["state"],
        "version": row["version"],
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
    }


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _error(status: int, code: str) -> Response:
    return _json({"error": code}, status)


def claims_of(request: Request) -> dict[str, Any] | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token, SECRET, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "jti", "sid", "sub", "uid"]}
        )
    except jwt.InvalidTokenError:
        return None
    return claims


async def account_allows(request: Request, claims: dict[str, Any]) -> bool:
    """The untrusted-view check: account present, enabled, same stamp; token not revoked; session alive."""
    async with request.app.state.pool.acquire() as conn:
        user = await conn.fetchrow(sql.USER_BY_ID, int(claims["uid"]))
    if user is None or user["disabled"] or user["security_stamp"] != claims.get("stm"):
        return False
    redis = request.app.state.redis
    if await redis.exists(REVOKED_KEY + claims["jti"]):
        return False
    return await redis.get(SESSION_KEY + claims["sid"]) is not None


@asynccontextmanager
async def connection(request: Request, wire: bool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; with `wire`, SQLAlchemy's round trip before it (the pool's pre-ping). The
    service reads in autocommit, as this anchor does, so a read adds nothing else."""
    async with request.app.state.pool.acquire() as conn:
        if wire:
            await conn.fetchrow(";")
        yield conn


async def _read(request: Request, node_id: str, wire: bool) -> Response:
    async with connection(request, wire) as conn:
        row = await conn.fetchrow(sql.NODE_BY_ID, node_id)
    return _json(node_out(row)) if row else _error(404, "not_found")


async def _list(request: Request, wire: bool) -> Response:
    query = request.query_params
    type_id, limit, offset = query.get("typeId", ""), int(query.get("limit", "50")), int(query.get("offset", "0"))
    async with connection(request, wire) as conn:
        total = await conn.fetchval(sql.COUNT_BY_TYPE, type_id)
        rows = await conn.fetch(sql.LIST_BY_TYPE, type_id, limit, offset)
    return _json({"items": [node_out(r) for r in rows], "total": total, "limit": limit, "offset": offset})


async def _create(request: Request, role: str, wire: bool) -> Response:
    if ROLES.index(role) < ROLES.index("editor"):
        return _error(403, "forbidden")
    data = orjson.loads(await request.body())
    now = datetime.now(UTC)
    node_id = data.get("id") or str(uuid.uuid4())
    values = (node_id, data["typeId"], data["title"], data.get("content", ""), data.get("meta", {}))
    async with connection(request, wire) as conn, conn.transaction():
        try:
            await conn.execute(sql.INSERT_NODE, *values, data.get("state", "ice"), 1, now, now)
        except asyncpg.UniqueViolationError:
            return _error(409, "conflict")
        row = await conn.fetchrow(sql.NODE_BY_ID, node_id)
    return _json(node_out(row), 201)


async def _route(request: Request, check: str, action: str, node_id: str = "") -> Response:
    """check: "token" (the token alone), "auth" (and the untrusted-view check), "wire" (token, and
    SQLAlchemy's round trips around the statements)."""
    claims = claims_of(request)
    if claims is None or (check == "auth" and not await account_allows(request, claims)):
        return _error(401, "unauthorized")
    wire = check == "wire"
    if action == "read":
        return await _read(request, node_id, wire)
    if action == "list":
        return await _list(request, wire)
    return await _create(request, str(claims.get("role", "viewer")), wire)


def _add_routes(prefix: str, check: str) -> None:
    async def read(request: Request, node_id: str) -> Response:
        return await _route(request, check, "read", node_id)

    async def list_nodes(request: Request) -> Response:
        return await _route(request, check, "list")

    async def create(request: Request) -> Response:
        return await _route(request, check, "create")

    app.add_api_route(f"{prefix}/api/nodes/{{node_id}}", read, methods=["GET"])
    app.add_api_route(f"{prefix}/api/nodes", list_nodes, methods=["GET"])
    app.add_api_route(f"{prefix}/api/nodes", create, methods=["POST"])


for _prefix, _check in (("", "token"), ("/auth", "auth"), ("/wire", "wire")):
    _add_routes(_prefix, _check)
