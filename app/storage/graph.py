"""Nodes and edges: everything is a node; edges relate two nodes with a role and a weight."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.rendering import render_json
from app.storage.database import reader
from app.storage.schema import edges, nodes


class NotFoundError(LookupError):
    """The named node or edge does not exist."""


class ConflictError(ValueError):
    """The write contradicts what is stored (duplicate id, stale version, missing endpoint)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def node_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "typeId": row.type_id,
        "title": row.title,
        "content": row.content,
        "meta": row.meta,
        "state": row.state,
        "version": row.version,
        "createdAt": _iso(row.created_at),
        "updatedAt": _iso(row.updated_at),
    }


def edge_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "fromId": row.from_id,
        "toId": row.to_id,
        "role": row.role,
        "weight": row.weight,
        "meta": row.meta,
        "createdAt": _iso(row.created_at),
    }


class GraphStore:
    """CRUD for nodes and edges on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.reads = reader(engine)  # one-statement reads: no transaction around them

    async def create_node(self, data: dict[str, Any]) -> bytes:
        """Insert a node; its JSON is rendered inside the transaction, so a failed render commits nothing."""
        now = _now()
        row = {
            "id": data.get("id") or str(uuid.uuid4()),
            "type_id": data["typeId"],
            "title": data["title"],
            "content": data.get("content", ""),
            "meta": data.get("meta", {}),
            "state": data.get("state", "ice"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(nodes).values(**row))
                return render_json(await self._node_in(conn, row["id"]))
        except IntegrityError as exc:
            raise ConflictError(f"node {row['id']!r} already exists") from exc

    @staticmethod
    async def _node_in(conn: AsyncConnection, node_id: str) -> dict[str, Any]:
        row = (await conn.execute(select(nodes).where(nodes.c.id == node_id))).first()
        if row is None:
            raise NotFoundError(f"node {node_id!r} not found")
        return node_out(row)

    async def upsert_node(self, conn: AsyncConnection, node_id: str, data: dict[str, Any]) -> None:
        """Insert a node or leave an existing one as it is (used for derived concept nodes).

        ON CONFLICT DO NOTHING, not check-then-insert: replicas extracting the same concept at once
        would otherwise race into a unique violation and fail the job."""
        now = _now()
        values = {
            "id": node_id,
            "type_id": data["typeId"],
            "title": data["title"],
            "content": data.get("content", ""),
            "meta": data.get("meta", {}),
            "state": data.get("state", "water"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(dialect.insert(nodes).values(**values).on_conflict_do_nothing(index_elements=["id"]))

    async def get_node(self, node_id: str) -> dict[str, Any]:
        async with self.reads.connect() as conn:
            return await self._node_in(conn, node_id)

    async def list_nodes(
        self,
        *,
        type_id: str | None,
        state: str | None,
        search: str | None,
        limit: int,
        offset: int,
    ) -> dict[str, Any]:
        conditions = []
        if type_id:
            conditions.append(nodes.c.type_id == type_id)
        if state:
            conditions.append(nodes.c.state == state)
        if search:
            conditions.append(nodes.c.title.ilike(f"%{search}%"))
        where = and_(True, *conditions)
        async with self.reads.connect() as conn:  # count and page: each its own snapshot, as in a transaction
            total = await conn.scalar(select(func.count()).select_from(nodes).where(where))
            rows = await conn.execute(
                select(nodes).where(where).order_by(nodes.c.created_at, nodes.c.id).limit(limit).offset(offset)
            )
            items = [node_out(r) for r in rows]
        return {"items": items, "total": total or 0, "limit": limit, "offset": offset}

    async def update_node(self, node_id: str, changes: dict[str, Any]) -> bytes:
        expected = changes.pop("version", None)
        columns = {
            "typeId": "type_id",
            "title": "title",
            "content": "content",
            "meta": "meta",
            "state": "state",
        }
        values = {columns[k]: v for k, v in changes.items() if k in columns and v is not None}
        condition = nodes.c.id == node_id
        if expected is not None:
            condition = and_(condition, nodes.c.version == expected)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(nodes).where(condition).values(**values, version=nodes.c.version + 1, updated_at=_now())
            )
            if result.rowcount:
                return render_json(await self._node_in(conn, node_id))
        current = await self.get_node(node_id)  # raises NotFoundError when absent
        raise ConflictError(f"node {node_id!r} is at version {current['version']}, not {expected}")

    async def delete_node(self, node_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(edges).where((edges.c.from_id == node_id) | (edges.c.to_id == node_id)))
            result = await conn.execute(delete(nodes).where(nodes.c.id == node_id))
        if result.rowcount == 0:
            raise NotFoundError(f"node {node_id!r} not found")

    async def create_edge(self, data: dict[str, Any]) -> bytes:
        async with self.engine.begin() as conn:
            return render_json(await self.add_edge(conn, data))

    async def add_edge(self, conn: AsyncConnection, data: dict[str, Any]) -> dict[str, Any]:
        found = set(await conn.scalars(select(nodes.c.id).where(nodes.c.id.in_([data["fromId"], data["toId"]]))))
        for field in ("fromId", "toId"):
            if data[field] not in found:
                raise NotFoundError(f"{field}: node {data[field]!r} not found")
        try:
            async with conn.begin_nested():
                result = await conn.execute(
                    insert(edges)
                    .values(
                        from_id=data["fromId"],
                        to_id=data["toId"],
                        role=data["role"],
                        weight=data.get("weight", 1.0),
                        meta=data.get("meta", {}),
                        created_at=_now(),
                    )
                    .returning(*edges.c)
                )
        except IntegrityError as exc:
            raise ConflictError(f"edge {data['fromId']!r} -[{data['role']}]-> {data['toId']!r} already exists") from exc
        return edge_out(result.one())

    async def list_edges(
        self, *, from_id: str | None, to_id: str | None, role: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        conditions = []
        if from_id:
            conditions.append(edges.c.from_id == from_id)
        if to_id:
            conditions.append(edges.c.to_id == to_id)
        if role:
            conditions.append(edges.c.role == role)
        where = and_(True, *conditions)
        async with self.reads.connect() as conn:  # count and page: each its own snapshot, as in a transaction
            total = await conn.scalar(select(func.count()).select_from(edges).where(where))
            rows = await conn.execute(select(edges).where(where).order_by(edges.c.id).limit(limit).offset(offset))
            items = [edge_out(r) for r in rows]
        return {"items": items, "total": total or 0, "limit": limit, "offset": offset}

    async def delete_edge(self, edge_id: int) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(edges).where(edges.c.id == edge_id))
        if result.rowcount == 0:
            raise NotFoundError(f"edge {edge_id} not found")

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.scalar(select(1))
