"""Chaos module (after Chaos Monkey for Spring Boot): latency, errors and a leak, off by default.

Faults hit /api routes only, so health probes keep telling the truth about the damage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.metrics import Metrics
from app.modules import Module

log = logging.getLogger("codex.chaos")
LEAK_TICK_SECONDS = 1.0


class ChaosModule(Module):
    name = "chaos"

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        super().__init__()
        self.settings, self.metrics = settings, metrics
        self.leaked: list[bytearray] = []
        self.random = random.Random()

    @property
    def active(self) -> bool:
        return self.settings.chaos_requested

    async def start(self) -> None:
        if not self.active:
            return
        log.warning(
            "CHAOS ON: latency=%sms error_rate=%s leak=%sMB/min fail_modules=%s",
            self.settings.chaos_latency_ms,
            self.settings.chaos_error_rate,
            self.settings.chaos_leak_mb_per_min,
            ",".join(sorted(self.settings.chaos_failing_modules)) or "-",
        )
        if self.settings.chaos_leak_mb_per_min:
            self.every(LEAK_TICK_SECONDS, self._leak, "leak")

    async def _leak(self) -> None:
        size = int(self.settings.chaos_leak_mb_per_min * 1024 * 1024 * LEAK_TICK_SECONDS / 60)
        self.leaked.append(bytearray(b"\x5a") * size)  # filled, so the pages are resident
        self.metrics.chaos_injections.labels("leak").inc()

    async def stop(self) -> None:
        self.leaked.clear()

    def health(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "latencyMs": self.settings.chaos_latency_ms,
            "errorRate": self.settings.chaos_error_rate,
            "leakMBPerMinute": self.settings.chaos_leak_mb_per_min,
            "leakedMB": round(sum(len(b) for b in self.leaked) / 1024 / 1024, 2),
            "failModules": sorted(self.settings.chaos_failing_modules),
        }


class ChaosMiddleware:
    """Injects the configured latency and errors into /api requests."""

    def __init__(self, app: ASGIApp, chaos: ChaosModule) -> None:
        self.app, self.chaos = app, chaos

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.chaos.settings
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if settings.chaos_latency_ms:
            self.chaos.metrics.chaos_injections.labels("latency").inc()
            await asyncio.sleep(settings.chaos_latency_ms / 1000)
        if settings.chaos_error_rate and self.chaos.random.random() < settings.chaos_error_rate:
            self.chaos.metrics.chaos_injections.labels("error").inc()
            body = json.dumps({"error": "chaos_injected", "message": "error injected by CHAOS_ERROR_RATE"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
