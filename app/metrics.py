"""Prometheus metrics of one service instance, in a registry of its own (names in DESIGN.md)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
)
from prometheus_client import gc_collector as _gc
from prometheus_client import platform_collector as _platform
from prometheus_client import process_collector as _process

from app.logs import dropped_lines

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
AI_OUTCOMES = ("accepted", "completed", "failed", "timeout", "rejected")
AUTH_FAILURE_REASONS = (
    "unknown_user",
    "bad_password",
    "locked",
    "bad_refresh",
    "expired",
    "invalid_token",
    "revoked",
    "session_ended",
)
CLEANUP_MODULES = ("sessions", "cache", "ai_pipeline", "memory")
AI_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every metric the service exports. Gauges are set from real state, never invented."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests_answered = 0  # the sum of http_requests, kept as a plain int for /health to read
        _process.ProcessCollector(registry=r)
        _platform.PlatformCollector(registry=r)
        _gc.GCCollector(registry=r)
        self.info = Info("codex_build", "Version and environment of this instance", registry=r)
        self.http_requests = Counter(
            "codex_http_requests_total",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "codex_http_request_latency_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.active_requests = Gauge("codex_active_requests", "Requests in flight", registry=r)
        self.log_dropped = Gauge(
            "codex_request_log_dropped_lines", "Request-tracker lines lost (queue full, write failed)", registry=r
        )
        self.log_dropped.set_function(dropped_lines)
        self.active_sessions = Gauge("codex_active_sessions", "Unexpired sessions", registry=r)
        self.revoked_tokens = Gauge("codex_revoked_tokens", "Unexpired revoked tokens", registry=r)
        self.memory_usage = Gauge("codex_memory_usage_bytes", "Resident set size", registry=r)
        self.memory_limit = Gauge("codex_memory_limit_bytes", "Memory limit in force", registry=r)
        self.memory_percent = Gauge("codex_memory_usage_percent", "RSS as a percentage of the limit", registry=r)
        self.memory_growth = Gauge(
            "codex_memory_growth_mb_per_minute", "RSS trend over the sampling window", registry=r
        )
        self.memory_leak = Gauge("codex_memory_leak_detected", "1 while sustained RSS growth is detected", registry=r)
        self.memory_optimizations = Counter(
            "codex_memory_optimizations_total", "Memory relief actions taken", registry=r
        )
        self.health_score = Gauge("codex_health_score", "Health score 0-100", registry=r)
        self.module_failures = Gauge("codex_module_failures", "Modules that failed to start", registry=r)
        self.module_loaded = Gauge("codex_module_loaded", "1 when the module started", ["module"], registry=r)
        self.ai_requests = Counter(
            "codex_ai_pipeline_requests_total",
            "AI extraction jobs by outcome",
            ["outcome"],
            registry=r,
        )
        self.ai_processing = Histogram(
            "codex_ai_pipeline_processing_seconds",
            "AI job processing time",
            buckets=AI_BUCKETS,
            registry=r,
        )
        self.ai_queue_depth = Gauge("codex_ai_pipeline_queue_depth", "Jobs waiting", registry=r)
        self.ai_queue_capacity = Gauge("codex_ai_pipeline_queue_capacity", "Queue bound", registry=r)
        self.ai_active = Gauge("codex_ai_pipeline_active_jobs", "Jobs being worked", registry=r)
        self.cleanup_events = Counter(
            "codex_cleanup_events_total",
            "Cleanup runs that removed something",
            ["module"],
            registry=r,
        )
        self.cleaned_items = Counter("codex_cleanup_items_total", "Items removed by cleanup", ["module"], registry=r)
        self.session_fallback = Gauge("codex_session_fallback_active", "1 while sessions are kept in SQL", registry=r)
        self.auth_failures = Counter("codex_auth_failures_total", "Failed authentications", ["reason"], registry=r)
        self.cache_requests = Counter("codex_cache_requests_total", "Response cache lookups", ["result"], registry=r)
        self.cache_entries = Gauge("codex_cache_entries", "Cached responses", registry=r)
        self.database_up = Gauge("codex_database_up", "1 when the database answers", registry=r)
        self.database_latency = Gauge(
            "codex_database_latency_seconds", "Latency of the last database probe", registry=r
        )
        self.redis_up = Gauge("codex_redis_up", "1 when Redis answers", registry=r)
        self.uptime = Gauge("codex_uptime_seconds", "Seconds since start", registry=r)
        self.chaos_injections = Counter(
            "codex_chaos_injections_total",
            "Faults injected by the chaos module",
            ["kind"],
            registry=r,
        )
        self._initialise_labels()

    def _initialise_labels(self) -> None:
        """Export known label values at 0, so rate() and alerts see a series before the first event."""
        for outcome in AI_OUTCOMES:
            self.ai_requests.labels(outcome)
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason)
        for module in CLEANUP_MODULES:
            self.cleanup_events.labels(module)
            self.cleaned_items.labels(module)
        for result in ("hit", "miss", "not_modified"):
            self.cache_requests.labels(result)
        for kind in ("latency", "error", "leak"):
            self.chaos_injections.labels(kind)
