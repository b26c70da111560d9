"""The storage module: engine, migrations to head, the graph store and a timed health probe."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.modules import Module
from app.storage import migrate
from app.storage.database import DatabaseTarget, create_engine, database_target
from app.storage.graph import GraphStore

PROBE_TIMEOUT_SECONDS = 2.0


class StorageModule(Module):
    name = "storage"
    critical = True

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.target: DatabaseTarget = database_target(settings)
        self._engine: AsyncEngine | None = None
        self._graph: GraphStore | None = None
        self.last_probe: dict[str, Any] = {"status": "unknown"}

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("storage is not started")
        return self._engine

    @property
    def graph(self) -> GraphStore:
        if self._graph is None:
            raise RuntimeError("storage is not started")
        return self._graph

    async def start(self) -> None:
        engine = create_engine(self.target, self.settings)
        try:
            await asyncio.wait_for(migrate.upgrade(engine), timeout=60)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._graph = GraphStore(engine)

    async def stop(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    async def probe(self) -> dict[str, Any]:
        """Run SELECT 1 with a timeout; a hung database reports down instead of hanging /health."""
        began = time.perf_counter()
        try:
            await asyncio.wait_for(self.graph.ping(), timeout=PROBE_TIMEOUT_SECONDS)
        except Exception as exc:
            error = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            self.last_probe = {"status": "down", "error": error[:300]}
        else:
            self.last_probe = {"status": "up"}
        self.last_probe.update(
            backend=self.target.backend,
            latencyMs=round((time.perf_counter() - began) * 1000, 2),
        )
        return self.last_probe

    def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {"backend": self.target.backend, "database": self.target.redacted}
        if self._engine is not None:
            pool: Any = self._engine.pool
            if hasattr(pool, "checkedout"):  # a QueuePool (PostgreSQL, file SQLite)
                report["pool"] = {
                    "size": pool.size(),
                    "checkedOut": pool.checkedout(),
                    "overflow": pool.overflow(),
                }
        return report
