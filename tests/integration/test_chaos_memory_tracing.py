"""Chaos injection, leak detection with real allocations, module failures, and traces."""

from __future__ import annotations

import asyncio
import itertools
import mmap
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app import memory as app_memory
from app.leak import SUSTAINED
from tests.conftest import RunningApp, running


async def test_chaos_errors_and_latency_hit_api_routes_only(make_settings) -> None:
    async for app in running(make_settings(chaos_error_rate=1.0, chaos_latency_ms=50)):
        h = {"Authorization": "Bearer whatever"}
        response = await app.client.get("/api/nodes", headers=h)
        assert response.status_code == 500 and response.json()["error"] == "chaos_injected"
        assert (await app.client.get("/health")).status_code == 200
        metrics = (await app.client.get("/metrics/prometheus")).text
        assert 'codex_chaos_injections_total{kind="error"} 1.0' in metrics
        assert (
            'codex_http_requests_total{method="GET",route="unmatched",status="500"}' in metrics
            or 'route="/api/nodes",status="500"' in metrics
        )


async def test_a_module_that_fails_to_load_degrades_health(make_settings) -> None:
    async for app in running(make_settings(chaos_fail_modules="ai_pipeline")):
        body = (await app.client.get("/health")).json()
        assert body["status"] == "degraded" and body["healthScore"] == 80
        assert body["moduleLoading"]["failed"][0]["name"] == "ai_pipeline"
        assert (await app.client.get("/health/ai-pipeline")).status_code == 503
        h = await app.bearer()
        refused = await app.client.post("/api/ai/extract", headers=h, json={"text": "x"})
        assert refused.status_code == 503 and refused.json()["error"] == "module_unavailable"
        assert "codex_module_failures 1.0" in (await app.client.get("/metrics")).text


async def test_storage_failing_makes_the_service_unhealthy(make_settings, tmp_path) -> None:
    settings = make_settings(sqlite_connection_string=f"Data Source={tmp_path}/no/such/dir/x.db")
    async for app in running(settings):
        response = await app.client.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "unhealthy"
        assert (await app.client.get("/health/ready")).status_code == 503
        assert (await app.client.get("/health/live")).status_code == 200


async def test_leak_detector_sees_sustained_growth(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(memory_window_samples=8, memory_leak_threshold_mb_per_min=1, memory_leak_warmup_seconds=0)
    async for app in running(settings):
        memory = app.services.memory
        memory.samples.clear()
        # The samples 1 s apart, as the app's sampler takes them on its interval: timed by the event loop, a
        # stalled sleep in the last third made that third look flat ("levelling off"; a CI run failed so).
        clock = itertools.count(time.monotonic(), 1.0)
        monkeypatch.setattr(app_memory, "time", SimpleNamespace(monotonic=clock.__next__, time=time.time))
        hoard = []
        for _ in range(8):
            # Fresh anonymous pages, touched: RSS grows by exactly this much whatever the allocator
            # kept from earlier tests.
            block = mmap.mmap(-1, 8 * 1024 * 1024)
            block.write(b"\x01" * len(block))
            hoard.append(block)
            await asyncio.sleep(0.02)
            memory.sample()
        body = (await app.client.get("/health/memory")).json()
        assert body["memoryLeaks"]["detected"] is True
        assert body["memoryLeaks"]["growthRateMBPerMinute"] > 1
        assert body["recommendations"]
        assert "codex_memory_leak_detected 1.0" in (await app.client.get("/metrics")).text
        for block in hoard:
            block.close()


async def _leak_report(app: RunningApp, done: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    """/health/memory's leak report once `done` says so (the sampler runs on its own clock: a loaded machine
    makes it late), or the last one after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        leaks = dict((await app.client.get("/health/memory")).json()["memoryLeaks"])
        if done(leaks) or asyncio.get_running_loop().time() > deadline:
            return leaks
        await asyncio.sleep(0.25)


async def test_the_chaos_leak_is_detected_once_warmed_only(make_settings) -> None:
    # The app's own sampler, every 0.25 s over 24 samples; the chaos leak adds 10 MB a second.
    fast = {"memory_sample_interval_seconds": 0.25, "memory_window_samples": 24, "chaos_leak_mb_per_min": 600}
    async for app in running(make_settings(**fast, memory_leak_warmup_seconds=0)):
        leaks = await _leak_report(app, lambda report: bool(report["detected"]))
        assert leaks["detected"] and leaks["judged"], leaks
        # Every third grew (a starved sampler makes one third flatter than the others: the rule allows it).
        assert min(leaks["thirdsMBPerMinute"]) >= SUSTAINED * leaks["thresholdMBPerMinute"], leaks
    async for app in running(make_settings(**fast, memory_leak_warmup_seconds=3600)):
        # The same growth for as long as the first case needed at most: never judged inside the warm-up.
        leaks = await _leak_report(app, lambda report: bool(report["detected"]), timeout=6)
        assert not leaks["detected"] and not leaks["judged"] and "after the warm-up" in leaks["note"], leaks


async def test_chaos_leak_grows_memory(make_settings) -> None:
    async for app in running(make_settings(chaos_leak_mb_per_min=600)):
        await asyncio.sleep(1.3)
        chaos = (await app.client.get("/health/memory")).json()["moduleMetrics"]["chaos"]
        assert chaos["active"] and chaos["leakedMB"] >= 9.9


async def test_memory_optimization_drops_caches_under_pressure(make_settings) -> None:
    settings = make_settings(enable_memory_optimization=True, heap_size_limit="64MB")
    async for app in running(settings):
        h = await app.bearer()
        await app.client.get("/api/nodes", headers=h)
        assert len(app.services.cache.entries) == 1
        app.services.memory.sample()  # the test process is far above 80% of 64 MB
        assert len(app.services.cache.entries) == 0
        body = (await app.client.get("/health/memory")).json()
        assert body["memoryPressure"] == "critical" and body["optimization"]["actionsTaken"] >= 1


async def test_requests_are_traced(make_settings) -> None:
    exporter = InMemorySpanExporter()
    async for app in running(make_settings(), span_exporter=exporter):
        await app.client.get("/health/live", headers={"X-Request-ID": "rid-1"})
    spans = [s for s in exporter.get_finished_spans() if s.name == "GET /health/live"]
    assert len(spans) == 1
    attributes = spans[0].attributes or {}
    assert attributes["http.route"] == "/health/live" and attributes["codex.request_id"] == "rid-1"
    assert spans[0].resource.attributes["service.name"] == "living-codex"
