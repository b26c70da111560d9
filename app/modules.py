"""The module host: discovery, start-up in order, health and shutdown of every service module."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("codex.modules")


class ModuleStartError(RuntimeError):
    """A module could not start; the host records it and carries on degraded."""


class PeriodicTask:
    """A timer owned by a module: runs `job` every `interval` seconds until cancelled."""

    def __init__(self, name: str, interval: float, job: Callable[[], Awaitable[Any]]) -> None:
        self.name, self.interval, self.job = name, interval, job
        self.runs = 0
        self.errors = 0
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def _loop(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.interval)
            try:
                await self.job()
                self.runs += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                log.exception("timer %s failed", self.name)

    async def cancel(self) -> None:
        """Stop the timer. The flag ends the loop even if a library swallowed the cancellation."""
        self._stopped = True
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            log.error("timer %s did not stop within 10 s", self.name)
        elif not task.cancelled() and task.exception() is not None:
            log.error("timer %s ended with %r", self.name, task.exception())

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()


class Module:
    """Base of every service module: start, stop, health, and the timers it owns."""

    name: str = "module"
    requires: tuple[str, ...] = ()
    critical: bool = False  # a critical module failing makes the service unhealthy

    def __init__(self) -> None:
        self.timers: list[PeriodicTask] = []

    def every(self, seconds: float, job: Callable[[], Awaitable[Any]], label: str) -> None:
        timer = PeriodicTask(f"{self.name}.{label}", seconds, job)
        self.timers.append(timer)
        timer.start()

    async def start(self) -> None:
        """Acquire resources. Raise to report a failed start."""

    async def stop(self) -> None:
        """Release resources; timers are cancelled by the host first."""

    def health(self) -> dict[str, Any]:
        """Real per-module figures for /health and /health/memory."""
        return {}


@dataclass
class ModuleState:
    name: str
    status: str = "discovered"  # discovered, loaded, failed, stopped
    error: str | None = None
    start_ms: float | None = None
    critical: bool = False


@dataclass
class ModuleHost:
    """Starts modules in the order given; a failure is recorded, never fatal to the process."""

    modules: list[Module]
    fail_on_purpose: frozenset[str] = frozenset()
    states: dict[str, ModuleState] = field(default_factory=dict)
    complete: bool = False

    def __post_init__(self) -> None:
        for module in self.modules:
            self.states[module.name] = ModuleState(module.name, critical=module.critical)
            log.info("module discovered: %s", module.name)

    def get(self, name: str) -> Module:
        return next(m for m in self.modules if m.name == name)

    def loaded(self, name: str) -> bool:
        return self.states[name].status == "loaded"

    async def start_all(self) -> None:
        for module in self.modules:
            state = self.states[module.name]
            began = time.perf_counter()
            try:
                missing = [r for r in module.requires if not self.loaded(r)]
                if missing:
                    raise ModuleStartError(f"requires {', '.join(missing)}, which did not load")
                if module.name in self.fail_on_purpose:
                    raise ModuleStartError("failed on purpose by CHAOS_FAIL_MODULES")
                await module.start()
            except Exception as exc:
                state.status, state.error = "failed", f"{type(exc).__name__}: {exc}"
                log.error("module %s failed to load: %s", module.name, state.error)
                await self._cancel_timers(module)
            else:
                state.status = "loaded"
                log.info("module loaded: %s", module.name)
            state.start_ms = round((time.perf_counter() - began) * 1000, 2)
        self.complete = True

    async def stop_all(self) -> None:
        for module in reversed(self.modules):
            state = self.states[module.name]
            if state.status != "loaded":
                continue
            await self._cancel_timers(module)
            try:
                await module.stop()
            except Exception:
                log.exception("module %s did not stop cleanly", module.name)
            state.status = "stopped"
            log.info("module stopped: %s", module.name)

    @staticmethod
    async def _cancel_timers(module: Module) -> None:
        for timer in module.timers:
            await timer.cancel()

    @property
    def failed(self) -> list[ModuleState]:
        return [s for s in self.states.values() if s.status == "failed"]

    def loading_report(self) -> dict[str, Any]:
        return {
            "discovered": len(self.states),
            "loaded": sum(1 for s in self.states.values() if s.status == "loaded"),
            "failed": [{"name": s.name, "error": s.error} for s in self.failed],
            "complete": self.complete,
        }

    def modules_report(self) -> list[dict[str, Any]]:
        report = []
        for module in self.modules:
            state = self.states[module.name]
            entry: dict[str, Any] = {
                "name": module.name,
                "status": state.status,
                "critical": module.critical,
                "startMs": state.start_ms,
                "timers": [
                    {"name": t.name, "intervalSeconds": t.interval, "runs": t.runs, "active": t.active}
                    for t in module.timers
                ],
            }
            if state.error:
                entry["error"] = state.error
            report.append(entry)
        return report
