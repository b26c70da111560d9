"""The running service's parts, wired once per app instance (no module-level state)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from app.ai.extractors import Extractor
from app.ai.pipeline import AIPipelineModule
from app.cache import CacheModule
from app.chaos import ChaosModule
from app.config import Settings
from app.identity import IdentityModule
from app.memory import MemoryModule
from app.metrics import Metrics
from app.modules import Module, ModuleHost
from app.sessions import SessionsModule
from app.storage.module import StorageModule

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

Lifecycle = Literal["starting", "ready", "draining", "stopped"]


class MetricsModule(Module):
    """Owns the exposition; loaded when Prometheus is enabled."""

    name = "metrics"

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        super().__init__()
        self.enabled, self.metrics = settings.prometheus_enabled, metrics

    def health(self) -> dict[str, object]:
        families = sum(1 for _ in self.metrics.registry.collect())
        return {"enabled": self.enabled, "metricFamilies": families}


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    storage: StorageModule
    sessions: SessionsModule
    identity: IdentityModule
    cache: CacheModule
    ai: AIPipelineModule
    memory: MemoryModule
    chaos: ChaosModule
    host: ModuleHost
    tracer_provider: TracerProvider | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    lifecycle: Lifecycle = "starting"
    shutdown_seconds: float | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        extractor: Extractor | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> Services:
        metrics = Metrics()
        storage = StorageModule(settings)
        sessions = SessionsModule(settings, storage, metrics)
        identity = IdentityModule(settings, storage, sessions, metrics)
        cache = CacheModule(settings, metrics)
        ai = AIPipelineModule(settings, storage, metrics, extractor)
        memory = MemoryModule(settings, metrics)
        memory.reliefs.append(cache.clear_local)
        chaos = ChaosModule(settings, metrics)
        order: list[Module] = [
            storage,
            sessions,
            identity,
            cache,
            ai,
            memory,
            MetricsModule(settings, metrics),
            chaos,
        ]
        host = ModuleHost(order, fail_on_purpose=settings.chaos_failing_modules)
        return cls(settings, metrics, storage, sessions, identity, cache, ai, memory, chaos, host, tracer_provider)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic

    def request_count(self) -> int:
        return self.metrics.requests_answered
