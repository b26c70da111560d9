"""The AI pipeline: jobs, results as concept nodes and edges, a bounded queue, timeouts, shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from app.ai.extractors import Concept
from tests.conftest import RunningApp, running


class GatedExtractor:
    """Holds every job until released, so tests can fill the queue deterministically."""

    name = "gated"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def extract(self, text: str) -> list[Concept]:
        self.started += 1
        await self.release.wait()
        return [Concept(term=text.split()[0].lower(), weight=1.0)]


async def wait_for_job(app: RunningApp, job_id: str, headers: dict[str, str], timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            job = (await app.client.get(f"/api/ai/jobs/{job_id}", headers=headers)).json()
            if job["status"] in ("completed", "failed"):
                return dict(job)
            await asyncio.sleep(0.02)


async def test_extraction_turns_text_into_concept_nodes_and_edges(codex: RunningApp) -> None:
    h = await codex.bearer()
    await codex.client.post(
        "/api/nodes",
        headers=h,
        json={
            "id": "doc",
            "typeId": "codex.doc",
            "title": "Redis sessions",
            "content": "Redis keeps sessions; sessions survive a Redis outage in PostgreSQL.",
        },
    )
    accepted = await codex.client.post("/api/ai/extract", headers=h, json={"nodeId": "doc"})
    assert accepted.status_code == 202
    assert accepted.headers["location"] == f"/api/ai/jobs/{accepted.json()['id']}"
    job = await wait_for_job(codex, accepted.json()["id"], h)
    assert job["status"] == "completed"
    terms = [c["term"] for c in job["result"]["concepts"]]
    assert terms[:2] == ["redis", "sessions"]  # 3 each; redis comes first
    assert job["result"]["edgesCreated"] == len(terms)
    concept = (await codex.client.get("/api/nodes/concept:sessions", headers=h)).json()
    assert concept["typeId"] == "codex.concept"
    edges = (await codex.client.get("/api/edges?fromId=doc&role=mentions", headers=h)).json()
    assert edges["total"] == len(terms)
    stats = (await codex.client.get("/health/ai-pipeline")).json()["metrics"]
    assert stats["completedRequests"] == 1 and stats["p95ProcessingTimeMs"] > 0
    assert stats["throughputPerMinute"] == 1


async def test_full_queue_answers_429_with_retry_after(make_settings) -> None:
    extractor = GatedExtractor()
    settings = make_settings(ai_queue_capacity=2, ai_workers=1)
    async for app in running(settings, extractor=extractor):
        h = await app.bearer()
        statuses = []
        for i in range(5):
            response = await app.client.post("/api/ai/extract", headers=h, json={"text": f"job{i} text"})
            statuses.append(response.status_code)
            await asyncio.sleep(0.02)  # let the single worker take the first job
        # one running, two queued, then the queue is full
        assert statuses == [202, 202, 202, 429, 429]
        rejected = await app.client.post("/api/ai/extract", headers=h, json={"text": "more"})
        assert int(rejected.headers["retry-after"]) >= 1
        assert rejected.json()["error"] == "queue_full"
        metrics = (await app.client.get("/metrics/prometheus")).text
        assert 'codex_ai_pipeline_requests_total{outcome="rejected"} 3.0' in metrics
        assert "codex_ai_pipeline_queue_depth 2.0" in metrics
        extractor.release.set()


async def test_a_slow_job_times_out(make_settings) -> None:
    extractor = GatedExtractor()
    async for app in running(make_settings(ai_job_timeout_seconds=0.2), extractor=extractor):
        h = await app.bearer()
        job_id = (await app.client.post("/api/ai/extract", headers=h, json={"text": "never"})).json()["id"]
        job = await wait_for_job(app, job_id, h)
        assert job["status"] == "failed" and "timed out after 0.2" in job["error"]
        stats = (await app.client.get("/health/ai-pipeline")).json()["metrics"]
        assert stats["timedOutRequests"] == 1 and stats["failedRequests"] == 1


async def test_unknown_job_is_404(codex: RunningApp) -> None:
    h = await codex.bearer()
    response = await codex.client.get("/api/ai/jobs/nope", headers=h)
    assert response.status_code == 404 and response.json()["field"] == "jobId"


async def test_jobs_left_at_shutdown_are_persisted_and_resumed(make_settings) -> None:
    settings = make_settings(ai_workers=1, shutdown_grace_seconds=0.2)
    gated = GatedExtractor()
    async for app in running(settings, extractor=gated):
        h = await app.bearer()
        ids = [
            (await app.client.post("/api/ai/extract", headers=h, json={"text": f"w{i} x"})).json()["id"]
            for i in range(3)
        ]
        async with asyncio.timeout(10):  # the worker claims the first job when the loop lets it
            while gated.started < 1:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        assert gated.started == 1  # one running (held), two queued
    # Shutdown cancelled the held job after the grace period and put it back in the queue.
    async for app in running(settings):  # the built-in extractor finishes them
        h = await app.bearer()
        for job_id in ids:
            assert (await wait_for_job(app, job_id, h))["status"] == "completed"
