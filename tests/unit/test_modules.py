from __future__ import annotations

import asyncio

from app.modules import Module, ModuleHost


class Good(Module):
    name = "good"

    async def start(self) -> None:
        self.every(0.01, self.tick, "tick")
        self.ticks = 0

    async def tick(self) -> None:
        self.ticks += 1


class Broken(Module):
    name = "broken"

    async def start(self) -> None:
        raise RuntimeError("no database")


class Dependent(Module):
    name = "dependent"
    requires = ("broken",)


async def test_a_failing_module_is_recorded_not_fatal() -> None:
    good = Good()
    host = ModuleHost([good, Broken(), Dependent()])
    await host.start_all()
    report = host.loading_report()
    assert report["complete"] and report["loaded"] == 1 and report["discovered"] == 3
    failed = {f["name"]: f["error"] for f in report["failed"]}
    assert "no database" in failed["broken"]
    assert "requires broken" in failed["dependent"]
    await asyncio.sleep(0.05)
    assert good.ticks > 0
    await host.stop_all()
    assert not good.timers[0].active
    ticks = good.ticks
    await asyncio.sleep(0.03)
    assert good.ticks == ticks  # the timer was cancelled at shutdown


async def test_a_module_can_be_failed_on_purpose() -> None:
    host = ModuleHost([Good()], fail_on_purpose=frozenset({"good"}))
    await host.start_all()
    assert host.failed[0].error is not None and "CHAOS_FAIL_MODULES" in host.failed[0].error
