"""Per-request observation: request id, security headers, metrics, the request-tracker log, a span."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def _route_of(scope: Scope) -> str:
    """The route template (/api/nodes/{node_id}), never the raw path: bounded label values."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestObserver:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, tracker: logging.Logger, tracer: Tracer | None, instance: str
    ) -> None:
        self.app, self.metrics, self.tracker = app, metrics, tracker
        self.tracer, self.instance = tracer, instance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (_header(scope, b"x-request-id") or uuid.uuid4().hex)[:64]
        scope.setdefault("state", {})["request_id"] = request_id
        secure = scope.get("scheme") == "https" or _header(scope, b"x-forwarded-proto") == "https"
        status = {"code": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers += [*SECURITY_HEADERS, (b"x-request-id", request_id.encode())]
                if secure:
                    headers.append(HSTS)
                message["headers"] = headers
            await send(message)

        began = time.perf_counter()
        self.metrics.active_requests.inc()
        span: Any = None
        if self.tracer is not None:
            span = self.tracer.start_span(f"{scope['method']} {scope['path']}", kind=SpanKind.SERVER)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - began
            self.metrics.active_requests.dec()
            route, method = _route_of(scope), scope["method"]
            self.metrics.http_requests.labels(method, route, str(status["code"])).inc()
            self.metrics.http_latency.labels(method, route).observe(elapsed)
            self.tracker.info(
                "method=%s path=%s route=%s status=%d latency_ms=%.2f request_id=%s instance=%s",
                method,
                scope["path"],
                route,
                status["code"],
                elapsed * 1000,
                request_id,
                self.instance,
            )
            if span is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status["code"])
                span.set_attribute("codex.request_id", request_id)
                if status["code"] >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                span.end()
