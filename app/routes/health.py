"""Health endpoints of the runbook and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import health
from app.errors import ApiError
from app.responses import FastJSONResponse as JSONResponse  # orjson; health bodies are large
from app.routes.deps import services_of
from app.services import Services

# Starlette tries routes in order, about 1.7 µs each: the probes (every few seconds from every load
# balancer and monitor) go first, ahead of the graph's reads; the rest of health after them (see
# app/main.py). GET /health/live is also answered before routing (app/middleware/hot_paths.py).
probes = APIRouter(tags=["health"])  # HEAD answers like GET, for load balancers' probes
router = APIRouter(tags=["health"])
UNAVAILABLE = {"Retry-After": "5"}  # every 503 tells the client when to try again


def _answer(body: dict[str, object], status: int) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=UNAVAILABLE if status == 503 else None)


@probes.head("/health/live", include_in_schema=False)
@probes.get("/health/live")
async def live(request: Request) -> dict[str, object]:
    return live_body(services_of(request))


def live_body(services: Services) -> dict[str, object]:
    """Also answered by app/middleware/hot_paths.py, before routing."""
    return {"status": "alive", "uptime": round(services.uptime, 3)}


@probes.head("/health/ready", include_in_schema=False)
@probes.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready when started and not draining, with every critical module loaded."""
    services = services_of(request)
    critical_down = [s.name for s in services.host.failed if s.critical]
    if services.lifecycle != "ready" or critical_down:
        reason = (
            services.lifecycle
            if services.lifecycle != "ready"
            else f"critical modules failed: {', '.join(critical_down)}"
        )
        return _answer({"status": "not_ready", "reason": reason}, 503)
    return JSONResponse({"status": "ready"})


@probes.head("/health", include_in_schema=False)
@probes.get("/health")
async def overall(request: Request) -> JSONResponse:
    body, status = await health.overall(services_of(request))
    return _answer(body, status)


@router.get("/health/memory")
@router.head("/health/memory", include_in_schema=False)
async def memory(request: Request) -> dict[str, object]:
    return await health.memory(services_of(request))


@router.get("/health/ai-pipeline")
@router.head("/health/ai-pipeline", include_in_schema=False)
async def ai_pipeline(request: Request) -> JSONResponse:
    body, status = health.ai_pipeline(services_of(request))
    return _answer(body, status)


@router.get("/modules")
async def modules(request: Request) -> dict[str, object]:
    services = services_of(request)
    return {"moduleLoading": services.host.loading_report(), "modules": services.host.modules_report()}


@router.get("/metrics/prometheus", response_class=PlainTextResponse)  # documented as text, as served
@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(request: Request) -> Response:
    services = services_of(request)
    if not services.settings.prometheus_enabled:
        raise ApiError(404, "metrics_disabled", "PROMETHEUS_ENABLED is false")
    await health.refresh_gauges(services)  # score, database and module gauges
    await health.refresh_session_gauges(services)
    services.metrics.ai_queue_depth.set(services.ai.queue.qsize())
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
