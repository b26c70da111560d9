"""Per-request observation: request id, security headers, metrics, the request-tracker log, a span.

A pure ASGI middleware (no BaseHTTPMiddleware task per request); the metric children are looked up
once per (method, route, status) and kept, and the log line is only queued (app/logs.py writes it).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any
from urllib.parse import quote

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from prometheus_client import Counter, Histogram
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
# A client's X-Request-ID is kept only when it is a short token of these characters; else a new one.
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Metric label values are bounded: any other method (nginx and uvicorn pass any token) counts as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# What stays readable in a logged path; anything else (space, %, controls, non-ASCII) is %-encoded.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


def _route_of(scope: Scope) -> str:
    """The route template (/api/nodes/{node_id}), never the raw path: bounded label values."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _headers_of(scope: Scope) -> tuple[bytes | None, bool]:
    """(the client's X-Request-ID, whether the client came over HTTPS) in one pass over the headers."""
    request_id, forwarded_https = None, False
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            request_id = value
        elif key == b"x-forwarded-proto":
            forwarded_https = value == b"https"
    return request_id, forwarded_https


_ID_PREFIX = os.urandom(8).hex()  # per process; with a counter: unique without a syscall per request
_ids = itertools.count(1)


def request_id_of(value: bytes | None) -> str:
    if value is not None and REQUEST_ID.fullmatch(value):
        return value.decode("ascii")
    return f"{_ID_PREFIX}{next(_ids):016x}"


def loggable_path(path: str) -> str:
    """The path as the client sent it on the wire: %0A stays %0A, a space is %20; one field, one line."""
    return quote(path, safe=_PATH_SAFE)


class RequestObserver:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, tracker: logging.Logger, tracer: Tracer | None, instance: str
    ) -> None:
        self.app, self.metrics, self.tracker = app, metrics, tracker
        self.tracer, self.instance = tracer, instance
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._latencies: dict[tuple[str, str], Histogram] = {}

    def _record(self, method: str, route: str, status: int, elapsed: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = self.metrics.http_requests.labels(
                method, route, str(status)
            )
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies[(method, route)] = self.metrics.http_latency.labels(method, route)
        counter.inc()
        latency.observe(elapsed)
        self.metrics.requests_answered += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_id, forwarded_https = _headers_of(scope)
        request_id = request_id_of(client_id)
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [*SECURITY_HEADERS, (b"x-request-id", request_id.encode())]
        if forwarded_https or scope.get("scheme") == "https":
            extra.append(HSTS)
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
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
            self._record(method if method in METHODS else "OTHER", route, status, elapsed)
            self.tracker.info(
                "method=%s path=%s route=%s status=%d latency_ms=%.2f request_id=%s instance=%s",
                method,
                loggable_path(scope["path"]),
                route,
                status,
                elapsed * 1000,
                request_id,
                self.instance,
            )
            if span is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("codex.request_id", request_id)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                span.end()
