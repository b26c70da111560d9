"""The AI pipeline: a bounded queue of concept-extraction jobs worked by concurrent workers.

Jobs live in SQL so every replica can answer a status query; a job is claimed atomically, so a
queued job left by a replica that stopped is picked up by the next one to start.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from collections import deque
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.ai.extractors import Extractor, KeywordExtractor, OpenAICompatibleExtractor
from app.config import Settings
from app.errors import ApiError
from app.metrics import Metrics
from app.modules import Module
from app.storage.errors import classify
from app.storage.graph import _iso
from app.storage.module import StorageModule
from app.storage.schema import ai_jobs
from app.timeutil import utcnow

log = logging.getLogger("codex.ai")
FINISHED = ("completed", "failed")
_WINDOW = 1000


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def concept_id(term: str) -> str:
    return "concept:" + re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


class AIPipelineModule(Module):
    name = "ai_pipeline"
    requires = ("storage",)

    def __init__(
        self, settings: Settings, storage: StorageModule, metrics: Metrics, extractor: Extractor | None = None
    ) -> None:
        super().__init__()
        self.settings, self.storage, self.metrics = settings, storage, metrics
        self.extractor: Extractor = extractor or (
            OpenAICompatibleExtractor(
                settings.ai_extractor_url, settings.ai_extractor_model, settings.ai_extractor_api_key
            )
            if settings.ai_extractor_url
            else KeywordExtractor()
        )
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=settings.ai_queue_capacity)
        self.submitting = 0  # accepted submissions still writing their row: they hold a queue slot
        self.workers: list[asyncio.Task[None]] = []
        self.running: dict[str, asyncio.Task[None]] = {}
        self.accepting = False
        self.durations: deque[float] = deque(maxlen=_WINDOW)
        self.finished_at: deque[float] = deque(maxlen=_WINDOW)
        self.counts = {"submitted": 0, "completed": 0, "failed": 0, "timeout": 0, "rejected": 0, "slow": 0}
        metrics.ai_queue_capacity.set(settings.ai_queue_capacity)

    async def start(self) -> None:
        await self._recover_jobs()
        self.accepting = True
        self.workers = [
            asyncio.create_task(self._work(i), name=f"ai-worker-{i}") for i in range(self.settings.ai_workers)
        ]
        self.every(60.0, self.cleanup, "cleanup")

    async def _recover_jobs(self) -> None:
        """Queue jobs a stopped replica left behind; requeue ones stuck running past their time."""
        stale = utcnow() - timedelta(seconds=2 * self.settings.ai_job_timeout_seconds)
        async with self.storage.engine.begin() as conn:
            await conn.execute(
                update(ai_jobs)
                .where(ai_jobs.c.status == "running", ai_jobs.c.started_at < stale)
                .values(status="queued", owner=None, started_at=None)
            )
            ids = (
                await conn.scalars(
                    select(ai_jobs.c.id)
                    .where(ai_jobs.c.status == "queued")
                    .order_by(ai_jobs.c.created_at)
                    .limit(self.settings.ai_queue_capacity)
                )
            ).all()
        for job_id in ids:
            self.queue.put_nowait(job_id)
        if ids:
            log.info("resumed %d queued AI jobs", len(ids))

    async def stop(self) -> None:
        """Take no new jobs; let running ones finish within the grace period, requeue the rest."""
        self.accepting = False
        running = list(self.running.values())  # jobs are shielded from their workers' cancel
        for worker in self.workers:
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        if running:
            log.info("waiting for %d running AI jobs", len(running))
            _, pending = await asyncio.wait(running, timeout=self.settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if isinstance(self.extractor, OpenAICompatibleExtractor):
            await self.extractor.close()

    # -- submitting ----------------------------------------------------------------------
    async def submit(self, text: str, node_id: str | None) -> dict[str, Any]:
        if not self.accepting:
            raise ApiError(
                503,
                "pipeline_unavailable",
                "the AI pipeline is not taking jobs",
                headers={"Retry-After": "5"},
            )
        # A slot is taken before the insert's await, so concurrent submissions cannot overfill the queue.
        if self.queue.qsize() + self.submitting >= self.queue.maxsize:
            self.counts["rejected"] += 1
            self.metrics.ai_requests.labels("rejected").inc()
            raise ApiError(
                429,
                "queue_full",
                f"the AI queue is full ({self.queue.maxsize} jobs); retry later",
                headers={"Retry-After": str(self._retry_after())},
            )
        job_id = uuid.uuid4().hex
        self.submitting += 1
        try:
            async with self.storage.engine.begin() as conn:
                await conn.execute(
                    insert(ai_jobs).values(
                        id=job_id,
                        node_id=node_id,
                        text=text,
                        status="queued",
                        owner=self.settings.node_name,
                        created_at=utcnow(),
                    )
                )
            self.queue.put_nowait(job_id)  # cannot overflow: this submission held its slot
        finally:
            self.submitting -= 1
        self.counts["submitted"] += 1
        self.metrics.ai_requests.labels("accepted").inc()
        self.metrics.ai_queue_depth.set(self.queue.qsize())
        return await self.job(job_id)

    def _retry_after(self) -> int:
        average = (sum(self.durations) / len(self.durations)) if self.durations else 1.0
        return max(1, math.ceil(self.queue.qsize() * average / self.settings.ai_workers))

    async def job(self, job_id: str) -> dict[str, Any]:
        async with self.storage.engine.connect() as conn:
            row = (await conn.execute(select(ai_jobs).where(ai_jobs.c.id == job_id))).first()
        if row is None:
            raise ApiError(404, "job_not_found", f"job {job_id!r} not found", field="jobId")
        return {
            "id": row.id,
            "nodeId": row.node_id,
            "status": row.status,
            "result": row.result,
            "error": row.error,
            "createdAt": _iso(row.created_at),
            "startedAt": _iso(row.started_at),
            "finishedAt": _iso(row.finished_at),
        }

    # -- working -------------------------------------------------------------------------
    async def _work(self, index: int) -> None:
        while self.accepting:
            job_id = await self.queue.get()
            self.metrics.ai_queue_depth.set(self.queue.qsize())
            try:
                if await self._claim(job_id):
                    task = asyncio.create_task(self._run(job_id), name=f"ai-job-{job_id}")
                    self.running[job_id] = task
                    self.metrics.ai_active.set(len(self.running))
                    try:
                        await asyncio.shield(task)
                    finally:
                        self.running.pop(job_id, None)
                        self.metrics.ai_active.set(len(self.running))
            except asyncio.CancelledError:
                raise
            except SQLAlchemyError as exc:  # the class and SQLSTATE only: a driver's message can carry data
                log.error("AI worker %d failed on job %s: %s", index, job_id, classify(exc).detail)
            except Exception:
                log.exception("AI worker %d failed on job %s", index, job_id)
            finally:
                self.queue.task_done()

    async def _claim(self, job_id: str) -> bool:
        async with self.storage.engine.begin() as conn:
            result = await conn.execute(
                update(ai_jobs)
                .where(ai_jobs.c.id == job_id, ai_jobs.c.status == "queued")
                .values(status="running", owner=self.settings.node_name, started_at=utcnow())
            )
        return bool(result.rowcount)

    async def _run(self, job_id: str) -> None:
        async with self.storage.engine.connect() as conn:
            row = (await conn.execute(select(ai_jobs).where(ai_jobs.c.id == job_id))).one()
        began = time.perf_counter()
        try:
            concepts = await asyncio.wait_for(
                self.extractor.extract(row.text), timeout=self.settings.ai_job_timeout_seconds
            )
            result = await self._store_concepts(row.node_id, concepts)
        except asyncio.CancelledError:
            await self._finish(job_id, "queued", None, None)  # shutdown: persisted for later
            raise
        except TimeoutError:
            elapsed = self._record(began, "timeout")
            await self._finish(job_id, "failed", None, f"timed out after {self.settings.ai_job_timeout_seconds} s")
            log.warning("AI job %s timed out after %.1f s", job_id, elapsed)
            return
        except Exception as exc:
            self._record(began, "failed")
            await self._finish(job_id, "failed", None, _failure_text(exc))
            return
        self._record(began, "completed")
        await self._finish(job_id, "completed", result, None)

    def _record(self, began: float, outcome: str) -> float:
        elapsed = time.perf_counter() - began
        self.counts[outcome] += 1
        if outcome == "timeout":
            self.counts["failed"] += 1
        if elapsed > self.settings.ai_slow_job_seconds:
            self.counts["slow"] += 1
        self.durations.append(elapsed)
        self.finished_at.append(time.monotonic())
        if self.settings.enable_ai_pipeline_monitoring:
            self.metrics.ai_requests.labels(outcome).inc()
            self.metrics.ai_processing.observe(elapsed)
        return elapsed

    async def _store_concepts(self, node_id: str | None, concepts: list[Any]) -> dict[str, Any]:
        graph = self.storage.graph
        edges = 0
        async with self.storage.engine.begin() as conn:
            for concept in concepts:
                cid = concept_id(concept["term"])
                await graph.upsert_node(conn, cid, {"typeId": "codex.concept", "title": concept["term"]})
                if node_id and node_id != cid:
                    try:
                        await graph.add_edge(
                            conn,
                            {"fromId": node_id, "toId": cid, "role": "mentions", "weight": concept["weight"]},
                        )
                        edges += 1
                    except ValueError:
                        pass  # the edge exists from an earlier extraction
        return {"extractor": self.extractor.name, "concepts": concepts, "edgesCreated": edges}

    async def _finish(self, job_id: str, status: str, result: Any, error: str | None) -> None:
        values: dict[str, Any] = {"status": status, "result": result, "error": error}
        values["finished_at"] = utcnow() if status in FINISHED else None
        if status == "queued":
            values.update(owner=None, started_at=None)
        async with self.storage.engine.begin() as conn:
            await conn.execute(update(ai_jobs).where(ai_jobs.c.id == job_id).values(**values))

    async def cleanup(self) -> int:
        cutoff = utcnow() - timedelta(seconds=self.settings.ai_job_retention_seconds)
        async with self.storage.engine.begin() as conn:
            result = await conn.execute(
                delete(ai_jobs).where(ai_jobs.c.status.in_(FINISHED), ai_jobs.c.finished_at < cutoff)
            )
        removed = int(result.rowcount or 0)
        self.metrics.cleanup_events.labels(self.name).inc()
        self.metrics.cleaned_items.labels(self.name).inc(removed)
        return removed

    # -- reporting -----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        durations = list(self.durations)
        now = time.monotonic()
        per_minute = sum(1 for t in self.finished_at if now - t <= 60)

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 2)

        return {
            "totalRequests": self.counts["submitted"],
            "activeRequests": len(self.running),
            "completedRequests": self.counts["completed"],
            "failedRequests": self.counts["failed"],
            "timedOutRequests": self.counts["timeout"],
            "rejectedRequests": self.counts["rejected"],
            "queueDepth": self.queue.qsize(),
            "queueCapacity": self.queue.maxsize,
            "workers": self.settings.ai_workers,
            "averageProcessingTimeMs": ms(sum(durations) / len(durations) if durations else None),
            "p95ProcessingTimeMs": ms(_percentile(durations, 0.95)),
            "p99ProcessingTimeMs": ms(_percentile(durations, 0.99)),
            "throughputPerMinute": per_minute,
            "slowRequests": self.counts["slow"],
            "slowThresholdMs": self.settings.ai_slow_job_seconds * 1000,
            "extractor": self.extractor.name,
        }

    def health(self) -> dict[str, Any]:
        return {
            "queueDepth": self.queue.qsize(),
            "activeJobs": len(self.running),
            "workers": len(self.workers),
        }


def _failure_text(exc: Exception) -> str:
    """What the job's owner reads: the extractor's own message, but for a database error only what
    classify() says (a driver's message can name other rows' values)."""
    if isinstance(exc, SQLAlchemyError):
        failure = classify(exc)
        return f"{failure.code}: {failure.message}"
    return f"{type(exc).__name__}: {exc}"[:500]
