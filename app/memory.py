"""Memory: RSS sampled over a window, a leak detector for sustained growth, and relief actions."""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from app.config import Settings
from app.leak import MB, LeakVerdict, judge_leak
from app.metrics import Metrics
from app.modules import Module

log = logging.getLogger("codex.memory")
_NO_LIMIT = 1 << 60  # cgroup v1 writes a huge number for "unlimited"
CGROUP_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def detect_limit(settings: Settings) -> tuple[int, str]:
    """The limit in force: HEAP_SIZE_LIMIT, else the cgroup's, else the machine's memory."""
    if settings.heap_limit_bytes:
        return settings.heap_limit_bytes, "HEAP_SIZE_LIMIT"
    for path in CGROUP_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < _NO_LIMIT:
            return int(text), f"cgroup ({path})"
    return psutil.virtual_memory().total, "physical memory"


class MemoryModule(Module):
    name = "memory"

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        super().__init__()
        self.settings, self.metrics = settings, metrics
        self.process = psutil.Process()
        self.samples: deque[tuple[float, int]] = deque(maxlen=settings.memory_window_samples)
        self.limit, self.limit_source = detect_limit(settings)
        self.reliefs: list[Callable[[], None]] = []  # e.g. drop the response cache
        self.optimizations = 0
        self.leak_detected = False
        # The leak detector judges only samples from the warm-up's end: process start + N seconds.
        uptime = max(0.0, time.time() - self.process.create_time())
        self.warm_from = time.monotonic() - uptime + settings.memory_leak_warmup_seconds
        self.leak = judge_leak([], self.warm_from, settings.memory_leak_threshold_mb_per_min, 0)

    async def start(self) -> None:
        if self.settings.gc_mode == "Server":
            gc.set_threshold(50_000, 20, 20)  # fewer collections, more throughput
        self.sample()
        self.every(self.settings.memory_sample_interval_seconds, self._tick, "sampler")

    async def _tick(self) -> None:
        self.sample()

    def sample(self) -> None:
        rss = self.process.memory_info().rss
        self.samples.append((time.monotonic(), rss))
        self.leak = self.judge_leak()
        self.leak_detected = self.leak.detected
        percent = self.percent(rss)
        self.metrics.memory_usage.set(rss)
        self.metrics.memory_limit.set(self.limit)
        self.metrics.memory_percent.set(percent)
        self.metrics.memory_growth.set(self.leak.trend.mb_per_minute)
        self.metrics.memory_leak.set(1 if self.leak_detected else 0)
        if self.settings.enable_memory_optimization and percent >= self.settings.memory_warning_percent:
            self.relieve(percent)

    def relieve(self, percent: float) -> None:
        for relief in self.reliefs:
            relief()
        collected = gc.collect()
        self.optimizations += 1
        self.metrics.memory_optimizations.inc()
        self.metrics.cleanup_events.labels(self.name).inc()
        self.metrics.cleaned_items.labels(self.name).inc(collected)
        log.warning("memory at %.1f%% of limit: caches dropped, gc freed %d objects", percent, collected)

    def rss(self) -> int:
        return self.samples[-1][1] if self.samples else self.process.memory_info().rss

    def percent(self, rss: int | None = None) -> float:
        return round(100.0 * (rss if rss is not None else self.rss()) / self.limit, 2)

    def judge_leak(self) -> LeakVerdict:
        minimum = max(4, self.settings.memory_window_samples // 2)
        return judge_leak(list(self.samples), self.warm_from, self.settings.memory_leak_threshold_mb_per_min, minimum)

    def pressure(self) -> str:
        percent = self.percent()
        if percent >= self.settings.memory_critical_percent:
            return "critical"
        if percent >= self.settings.memory_warning_percent:
            return "warning"
        return "normal"

    def usage(self) -> dict[str, Any]:
        rss = self.rss()
        info = self.process.memory_info()
        return {
            "rssBytes": rss,
            "rssMB": round(rss / MB, 2),
            "vmsMB": round(info.vms / MB, 2),
            "limitBytes": self.limit,
            "limitMB": round(self.limit / MB, 2),
            "limitSource": self.limit_source,
            "usagePercent": self.percent(rss),
            "gcObjects": len(gc.get_objects()),
            "gcCollections": [s["collections"] for s in gc.get_stats()],
        }

    def leak_report(self) -> dict[str, Any]:
        leak = self.leak
        return {
            "detected": leak.detected,
            "judged": leak.judged,
            "note": leak.note,
            "growthRateMBPerMinute": round(leak.trend.mb_per_minute, 3),
            "rSquared": round(leak.trend.r_squared, 3),
            "thirdsMBPerMinute": [round(p, 3) for p in leak.parts],
            "thresholdMBPerMinute": self.settings.memory_leak_threshold_mb_per_min,
            "windowSamples": leak.trend.samples,
            "windowSeconds": round(leak.trend.window_seconds, 1),
            "sampleIntervalSeconds": self.settings.memory_sample_interval_seconds,
            "warmupSeconds": self.settings.memory_leak_warmup_seconds,
        }

    def recommendations(self) -> list[str]:
        advice = []
        pressure = self.pressure()
        if pressure != "normal":
            advice.append(
                f"Memory at {self.percent()}% of the {self.limit_source} limit "
                f"({pressure}): find the largest module below, or restart the replica."
            )
            if not self.settings.enable_memory_optimization:
                advice.append("Set ENABLE_MEMORY_OPTIMIZATION=true to drop caches under pressure.")
        if self.leak_detected:
            advice.append(
                "Sustained RSS growth: a leak is likely; compare moduleMetrics over time "
                "and check CHAOS_LEAK_MB_PER_MIN is unset."
            )
        return advice

    def health(self) -> dict[str, Any]:
        return {
            "rssMB": round(self.rss() / MB, 2),
            "samples": len(self.samples),
            "optimizations": self.optimizations,
        }
