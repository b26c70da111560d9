"""Health reports and the health score: each figure is measured when the report is asked for, except
the database probe, whose "up" answer is reused for up to PROBE_TTL_SECONDS."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from app.services import Services
from app.storage.module import StorageModule
from app.version import running_version

PROBE_TTL_SECONDS = 1.0  # /health under load: at most one database round trip a second per replica


@dataclass
class Assessment:
    critical_below: float  # the stack's critical health score (HEALTH_SCORE_CRITICAL)
    score: int = 100
    issues: list[str] = field(default_factory=list)
    critical: bool = False

    def penalise(self, points: int, reason: str, *, critical: bool = False) -> None:
        self.score = max(0, self.score - points)
        self.issues.append(reason)
        self.critical = self.critical or critical

    @property
    def status(self) -> str:
        if self.critical or self.score < self.critical_below:
            return "unhealthy"
        if self.issues:
            return "degraded"
        return "healthy"


class ProbeCache:
    """The database probe's last "up" answer, reused for PROBE_TTL_SECONDS; callers arriving while a
    probe runs share it. A failed probe is never reused, so a recovery shows on the next request."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] | None = None
        self.at = 0.0
        self.running: asyncio.Future[dict[str, Any]] | None = None

    async def get(self, probe: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        if self.answer is not None and time.monotonic() - self.at < PROBE_TTL_SECONDS:
            return self.answer
        if self.running is None or self.running.done():
            self.running = asyncio.ensure_future(self._refresh(probe))
        return await asyncio.shield(self.running)  # one caller giving up does not cancel the others'

    async def _refresh(self, probe: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        answer = await probe()
        self.answer, self.at = (answer, time.monotonic()) if answer.get("status") == "up" else (None, 0.0)
        return answer


@cache
def release_digest() -> str | None:
    """The digest of the release this process runs, as its deployer set it (CODEX_RELEASE_DIGEST, beside
    CODEX_RELEASE): `codexops diff` and `sync` ask each replica what it serves rather than remember it."""
    return os.environ.get("CODEX_RELEASE_DIGEST") or None


_probes: WeakKeyDictionary[StorageModule, ProbeCache] = WeakKeyDictionary()


async def probe_database(services: Services) -> dict[str, Any]:
    if not services.host.loaded("storage"):
        state = services.host.states["storage"]
        return {"status": "down", "backend": services.storage.target.backend, "error": state.error}
    cache = _probes.setdefault(services.storage, ProbeCache())
    return await cache.get(services.storage.probe)


def assess(services: Services, database: dict[str, Any]) -> Assessment:
    """Score 100 minus a documented penalty for every problem found now."""
    result = Assessment(services.settings.health_score_critical)
    for state in services.host.failed:
        result.penalise(
            40 if state.critical else 20,
            f"module {state.name} failed: {state.error}",
            critical=state.critical,
        )
    if database["status"] != "up":
        result.penalise(40, f"database {database['status']}: {database.get('error')}", critical=True)
    redis = services.sessions.redis_report()
    if redis["status"] == "down":
        if redis["fallbackActive"]:
            result.penalise(10, "Redis down: sessions served from SQL (fallback active)")
        else:
            result.penalise(30, "Redis down and no fallback: logins fail")
    pressure = services.memory.pressure()
    if pressure == "critical":
        result.penalise(35, f"memory critical: {services.memory.percent()}% of limit")
    elif pressure == "warning":
        result.penalise(15, f"memory warning: {services.memory.percent()}% of limit")
    if services.memory.leak_detected:
        result.penalise(20, "memory leak detected: sustained RSS growth")
    if services.host.loaded("ai_pipeline"):
        ai = services.ai.stats()
        if ai["queueDepth"] >= 0.9 * ai["queueCapacity"]:
            result.penalise(10, f"AI queue nearly full: {ai['queueDepth']}/{ai['queueCapacity']}")
    if services.lifecycle == "draining":
        result.penalise(0, "draining: shutting down")
    return result


def publish(services: Services, assessment: Assessment) -> None:
    """Keep the gauges that derive from a health assessment current."""
    metrics = services.metrics
    metrics.health_score.set(assessment.score)
    metrics.module_failures.set(len(services.host.failed))
    metrics.uptime.set(services.uptime)
    for name, state in services.host.states.items():
        metrics.module_loaded.labels(name).set(1 if state.status == "loaded" else 0)


async def refresh_gauges(services: Services) -> None:
    """Before a scrape: the gauges that derive from a health assessment (only scrapes read them, so
    /health itself does not pay for them)."""
    database = await probe_database(services)
    services.metrics.database_up.set(1 if database["status"] == "up" else 0)
    services.metrics.database_latency.set(database.get("latencyMs", 0) / 1000)
    publish(services, assess(services, database))


async def overall(services: Services) -> tuple[dict[str, Any], int]:
    database = await probe_database(services)
    assessment = assess(services, database)
    status = assessment.status if services.host.complete else "initializing"
    body = {
        "status": status,
        "healthScore": assessment.score,
        "issues": assessment.issues,
        "lifecycle": services.lifecycle,
        "uptime": round(services.uptime, 3),
        "startedAt": services.started_wall,
        "requestCount": services.request_count(),
        "moduleLoading": services.host.loading_report(),
        "modules": services.host.modules_report(),
        "database": database,
        "redis": services.sessions.redis_report(),
        "memoryUsageMB": round(services.memory.rss() / 1024 / 1024, 2),
        "memoryPressure": services.memory.pressure(),
        "version": running_version(services.settings.release),
        "digest": release_digest(),
        "environment": services.settings.environment,
        "observability": {
            "prometheus": services.settings.prometheus_enabled,
            "grafana": services.settings.grafana_enabled,
            "tracing": services.tracer_provider is not None,
        },
        "instance": services.settings.node_name,
    }
    return body, 503 if status == "unhealthy" else 200


async def memory(services: Services) -> dict[str, Any]:
    database = await probe_database(services)
    assessment = assess(services, database)
    module_metrics = {
        m.name: m.health() for m in services.host.modules if services.host.states[m.name].status == "loaded"
    }
    return {
        "memoryUsage": services.memory.usage(),
        "memoryUsageMB": round(services.memory.rss() / 1024 / 1024, 2),
        "memoryPressure": services.memory.pressure(),
        "thresholds": {
            "warningPercent": services.settings.memory_warning_percent,
            "criticalPercent": services.settings.memory_critical_percent,
        },
        "healthScore": assessment.score,
        "memoryLeaks": services.memory.leak_report(),
        "optimization": {
            "enabled": services.settings.enable_memory_optimization,
            "gcMode": services.settings.gc_mode,
            "actionsTaken": services.memory.optimizations,
        },
        "moduleMetrics": module_metrics,
        "recommendations": services.memory.recommendations(),
    }


def ai_pipeline(services: Services) -> tuple[dict[str, Any], int]:
    settings = services.settings
    if not services.host.loaded("ai_pipeline"):
        error = services.host.states["ai_pipeline"].error
        return {
            "enabled": settings.enable_ai_pipeline_monitoring,
            "status": "unhealthy",
            "healthScore": 0,
            "error": error,
            "metrics": None,
        }, 503
    stats = services.ai.stats()
    score = 100
    finished = stats["completedRequests"] + stats["failedRequests"]
    if finished:
        score -= round(50 * stats["failedRequests"] / finished)
    score -= round(30 * stats["queueDepth"] / stats["queueCapacity"])
    warning, critical = settings.health_score_warning, settings.health_score_critical
    status = "healthy" if score >= warning else "degraded" if score >= critical else "unhealthy"
    return {
        "enabled": settings.enable_ai_pipeline_monitoring,
        "status": status,
        "healthScore": max(score, 0),
        "metrics": stats,
    }, 200


async def refresh_session_gauges(services: Services) -> None:
    if not services.host.loaded("sessions"):
        return
    try:
        active, revoked = await asyncio.wait_for(services.sessions.store.counts(), timeout=2)
    except Exception:
        return  # the store is down; the database gauge already says so
    services.metrics.active_sessions.set(active)
    services.metrics.revoked_tokens.set(revoked)
