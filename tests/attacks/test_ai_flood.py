"""A burst of AI submissions: past capacity a 429 with Retry-After, never a 500, every accepted job
completes. Before the fix the full() check and put_nowait() had an insert's await between them, so
a concurrent burst overfilled the queue: 500 QueueFull, and a row left queued for nobody."""

from __future__ import annotations

import asyncio

from tests.conftest import RunningApp, SettingsFactory, running


async def test_a_burst_past_capacity_is_429_and_every_accepted_job_completes(make_settings: SettingsFactory) -> None:
    async for codex in running(make_settings(ai_queue_capacity=2, ai_workers=1)):
        headers = await codex.bearer()
        text = "Glaciers carve valleys; rivers carry the sediment to deltas. " * 10
        answers = await asyncio.gather(
            *(codex.client.post("/api/ai/extract", headers=headers, json={"text": text}) for _ in range(40))
        )
        statuses = sorted({a.status_code for a in answers})
        assert statuses == [202, 429], statuses
        for answer in (a for a in answers if a.status_code == 429):
            assert answer.json()["error"] == "queue_full" and int(answer.headers["retry-after"]) >= 1
        for answer in (a for a in answers if a.status_code == 202):
            await _completes(codex, headers, answer.headers["location"])


async def _completes(codex: RunningApp, headers: dict[str, str], location: str) -> None:
    for _ in range(200):
        job = (await codex.client.get(location, headers=headers)).json()
        if job["status"] == "completed":
            return
        assert job["status"] in ("queued", "running"), job
        await asyncio.sleep(0.05)
    raise AssertionError(f"{location} did not complete: {job}")
