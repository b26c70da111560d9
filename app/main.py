"""The app factory: settings in, a FastAPI app with its modules, middleware and routes out."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app.ai.extractors import Extractor
from app.chaos import ChaosMiddleware
from app.config import Settings
from app.errors import ApiError, error_body, install_error_handlers
from app.logs import configure_logging, flush_request_log
from app.middleware.body_limit import BodyLimit
from app.middleware.compress import GzipWhenAsked
from app.middleware.hot_paths import HotPaths
from app.middleware.observe import RequestObserver
from app.responses import FastJSONResponse
from app.routes import admin, ai, auth, graph, health
from app.services import Services
from app.sessions import SessionStoreUnavailable
from app.storage.errors import classify
from app.storage.graph import ConflictError, NotFoundError
from app.tracing import tracer_provider
from app.version import running_version

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("codex.server")
RETRY_AFTER_SECONDS = "5"


def _install_domain_errors(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        message = str(exc.args[0]) if exc.args else "not found"
        field = message.split(":")[0] if message.startswith(("fromId", "toId")) else None
        return JSONResponse(error_body(request, "not_found", message, field=field), status_code=404)

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse(error_body(request, "conflict", str(exc)), status_code=409)

    async def sessions_down(request: Request, exc: Exception) -> JSONResponse:
        message = str(exc) if isinstance(exc, SessionStoreUnavailable) else "Redis did not answer; see /health redis"
        return JSONResponse(
            error_body(request, "sessions_unavailable", message),
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    app.add_exception_handler(SessionStoreUnavailable, sessions_down)
    app.add_exception_handler(RedisError, sessions_down)  # a Redis call outside the fallback's reach

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        failure = classify(exc)
        # The class and SQLSTATE only: a driver's message or statement can carry the user's data.
        log.error("database error on %s %s: %s -> %d", request.method, request.url.path, failure.detail, failure.status)
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if failure.status == 503 else None
        return JSONResponse(
            error_body(request, failure.code, failure.message), status_code=failure.status, headers=headers
        )

    for error_class in (SQLAlchemyError, OSError, TimeoutError):
        app.add_exception_handler(error_class, database_error)


def _route(router: APIRouter, name: str) -> APIRoute:
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.name == name and "GET" in (r.methods or ()))


def create_app(
    settings: Settings | None = None,
    *,
    extractor: Extractor | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    settings = settings or Settings()
    tracker = configure_logging(settings.log_dir, settings.log_level)
    provider = tracer_provider(settings, span_exporter)
    services = Services.build(settings, extractor, provider)
    version = running_version(settings.release)  # the release id, as /health reports it
    services.metrics.info.info(
        {"version": version, "environment": settings.environment, "instance": settings.node_name}
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting Living Codex %s (%s) as %s", version, settings.environment, settings.node_name)
        await services.host.start_all()
        loading = services.host.loading_report()
        log.info(
            "module loading complete: %d/%d loaded, failed: %s",
            loading["loaded"],
            loading["discovered"],
            [f["name"] for f in loading["failed"]] or "none",
        )
        services.lifecycle = "ready"
        try:
            yield
        finally:
            began = time.perf_counter()
            services.lifecycle = "draining"
            await services.host.stop_all()
            if provider is not None:
                provider.shutdown()
            services.lifecycle = "stopped"
            services.shutdown_seconds = time.perf_counter() - began
            log.info("modules stopped in %.3f s", services.shutdown_seconds)
            flush_request_log(settings.log_dir)

    docs = settings.api_docs_enabled  # app.openapi() works in-process either way
    app = FastAPI(
        title="Living Codex",
        version=version,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        default_response_class=FastJSONResponse,
    )
    app.state.services = services
    install_error_handlers(app)
    _install_domain_errors(app)
    for router in (health.probes, graph.router, health.router, auth.router, ai.router, admin.router):
        app.include_router(router)

    # Added innermost first: the observer wraps everything, so it sees every status and latency.
    # Every layer is pure ASGI, and a layer with nothing to do is not added: each one is a pass per request.
    app.add_middleware(
        HotPaths,
        services=services,
        live_route=_route(health.probes, "live"),
        node_route=_route(graph.router, "get_node"),
    )
    if settings.enable_performance_optimization:
        # Level 5, not Starlette's 9: nearly the same size for JSON at a fraction of the CPU. Behind
        # nginx the replicas do not compress at all (it drops Accept-Encoding and compresses itself).
        app.add_middleware(GzipWhenAsked, minimum_size=1024, compresslevel=5)
    if services.chaos.active:
        app.add_middleware(ChaosMiddleware, chaos=services.chaos)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    tracer = provider.get_tracer("living-codex") if provider is not None else None
    app.add_middleware(
        RequestObserver, metrics=services.metrics, tracker=tracker, tracer=tracer, instance=settings.node_name
    )
    return app


__all__ = ["ApiError", "create_app"]
