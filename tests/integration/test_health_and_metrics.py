"""The runbook's health endpoints and the Prometheus exposition, on the embedded SQLite."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.conftest import RunningApp

DESIGN_METRICS = [
    "codex_http_requests_total",
    "codex_http_request_latency_seconds_bucket",
    "codex_active_requests",
    "codex_active_sessions",
    "codex_revoked_tokens",
    "codex_memory_usage_bytes",
    "codex_memory_usage_percent",
    "codex_memory_leak_detected",
    "codex_health_score",
    "codex_module_failures",
    "codex_ai_pipeline_requests_total",
    "codex_ai_pipeline_processing_seconds_bucket",
    "codex_ai_pipeline_queue_depth",
    "codex_cleanup_events_total",
    "codex_session_fallback_active",
    "codex_auth_failures_total",
]


async def test_health_carries_every_documented_field(codex: RunningApp) -> None:
    response = await codex.client.get("/health")
    assert response.status_code == 200
    body = response.json()
    for key in (
        "status",
        "uptime",
        "requestCount",
        "healthScore",
        "moduleLoading",
        "modules",
        "database",
        "redis",
        "memoryUsageMB",
        "version",
    ):
        assert key in body, key
    assert body["status"] == "healthy" and body["healthScore"] == 100
    assert body["moduleLoading"] == {"discovered": 8, "loaded": 8, "failed": [], "complete": True}
    assert body["database"]["status"] == "up" and body["database"]["backend"] == "sqlite"
    assert body["database"]["latencyMs"] >= 0
    assert body["redis"]["status"] == "not_configured" and body["redis"]["fallbackActive"]
    assert body["memoryUsageMB"] > 10  # a real RSS, not a placeholder


async def test_request_count_counts_real_requests(codex: RunningApp) -> None:
    first = (await codex.client.get("/health")).json()["requestCount"]
    for _ in range(3):
        await codex.client.get("/health/live")
    assert (await codex.client.get("/health")).json()["requestCount"] == first + 4


async def test_memory_report(codex: RunningApp) -> None:
    body = (await codex.client.get("/health/memory")).json()
    usage = body["memoryUsage"]
    assert usage["rssBytes"] > 10 * 1024 * 1024 and usage["limitBytes"] > usage["rssBytes"]
    assert 0 < usage["usagePercent"] < 100
    assert body["memoryPressure"] == "normal"
    assert set(body["memoryLeaks"]) >= {"detected", "growthRateMBPerMinute", "windowSamples"}
    assert body["moduleMetrics"]["cache"]["enabled"] is True
    assert body["moduleMetrics"]["ai_pipeline"]["workers"] == 5
    assert isinstance(body["recommendations"], list)


async def test_ai_pipeline_report(codex: RunningApp) -> None:
    body = (await codex.client.get("/health/ai-pipeline")).json()
    assert body["enabled"] is True and body["status"] == "healthy"
    metrics = body["metrics"]
    assert metrics["queueCapacity"] == 100 and metrics["workers"] == 5
    assert metrics["totalRequests"] == 0 and metrics["p95ProcessingTimeMs"] is None


async def test_live_and_ready(codex: RunningApp) -> None:
    assert (await codex.client.get("/health/live")).status_code == 200
    assert (await codex.client.get("/health/ready")).json() == {"status": "ready"}
    codex.services.lifecycle = "draining"
    response = await codex.client.get("/health/ready")
    assert response.status_code == 503 and response.json()["reason"] == "draining"


async def test_modules_endpoint(codex: RunningApp) -> None:
    body = (await codex.client.get("/modules")).json()
    names = [m["name"] for m in body["modules"]]
    assert names == ["storage", "sessions", "identity", "cache", "ai_pipeline", "memory", "metrics", "chaos"]


async def test_prometheus_text_has_every_design_metric(codex: RunningApp) -> None:
    await codex.client.get("/health")
    response = await codex.client.get("/metrics/prometheus")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in DESIGN_METRICS:
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    for word in ("memory", "sessions", "requests", "latency"):  # the runbook's greps
        assert word in text
    assert (await codex.client.get("/metrics")).text.startswith("# HELP")


async def test_metrics_reflect_traffic(codex: RunningApp) -> None:
    for _ in range(5):
        await codex.client.get("/health/live")
    text = (await codex.client.get("/metrics/prometheus")).text
    line = re.search(r'codex_http_requests_total\{method="GET",route="/health/live",status="200"\} (\S+)', text)
    assert line and float(line.group(1)) == 5.0
    assert re.search(r"^codex_health_score 100\.0$", text, re.M)
    assert re.search(r"^codex_module_failures 0\.0$", text, re.M)


async def test_metrics_disabled_answers_404(make_settings) -> None:
    from tests.conftest import running

    async for app in running(make_settings(prometheus_enabled=False)):
        response = await app.client.get("/metrics/prometheus")
        assert response.status_code == 404 and response.json()["error"] == "metrics_disabled"


async def test_logs_are_written(codex: RunningApp) -> None:
    await codex.client.get("/health/live", headers={"X-Request-ID": "trace-me-42"})
    log_dir = codex.services.settings.log_dir
    tracker = await tracker_text(log_dir, "trace-me-42")
    assert re.search(
        r"method=GET path=/health/live route=/health/live status=200 latency_ms=[\d.]+ "
        r"request_id=trace-me-42",
        tracker,
    )
    server = Path(log_dir, "server.log").read_text()
    assert "module loaded: storage" in server and "module loading complete: 8/8" in server


async def tracker_text(log_dir: str, expect: str) -> str:
    """The request tracker is written by a background thread: wait (briefly) for the line."""
    path = Path(log_dir, "request-tracker.log")
    for _ in range(100):
        text = path.read_text() if path.exists() else ""
        if expect in text:
            return text
        await asyncio.sleep(0.02)
    return text


async def test_log_injection_is_escaped(codex: RunningApp) -> None:
    """%0A in the path and a crafted X-Request-ID cannot write a forged line (issue 8, item 9)."""
    forged = "2026-11-28 00:00:00,000 INFO codex.requests method=POST path=/api/admin/users status=200"
    response = await codex.client.get(
        "/health/live%0D%0A" + forged.replace(" ", "%20"), headers={"X-Request-ID": "x y status=200"}
    )
    assert response.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    text = await tracker_text(codex.services.settings.log_dir, response.headers["x-request-id"])
    lines = [line for line in text.splitlines() if "route=unmatched" in line]
    assert len(lines) == 1 and "path=/health/live%0D%0A2026-11-28%2000:00:00" in lines[0]
    assert not any(line.startswith("2026-11-28 00:00:00") for line in text.splitlines())
    assert "x y status=200" not in text
