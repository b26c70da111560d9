"""Requests answered before routing (app/middleware/hot_paths.py) answer exactly as the routes do,
and everything the hot path may not decide still reaches FastAPI (issue 11)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app.identity import Principal
from tests.conftest import RunningApp, SettingsFactory, running
from tests.support.servers import Postgres, Redis

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"


@pytest.fixture
async def app(
    fresh_postgres: Postgres, redis_server: Redis, make_settings: SettingsFactory
) -> AsyncIterator[RunningApp]:
    settings = make_settings(connection_string=fresh_postgres.url, redis_connection_string=redis_server.url)
    async for running_app in running(settings):
        async with asyncio.timeout(5):
            while not running_app.services.identity.view.trusted:
                await asyncio.sleep(0.02)
        yield running_app


class HotCount:
    """Counts node reads the hot path answered; `off` sends every read the full way instead."""

    def __init__(self, app: RunningApp) -> None:
        self.identity, self.answered, self.off = app.services.identity, 0, False
        self.real = self.identity.known_principal
        self.identity.known_principal = self._known  # type: ignore[method-assign]

    def _known(self, token: str) -> Principal | None:
        principal = None if self.off else self.real(token)
        self.answered += principal is not None
        return principal


def _comparable(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    return response.status_code, response.content, headers


async def _node(app: RunningApp, headers: dict[str, str]) -> str:
    """Create a node, and wait for the create's own invalidation to come back over Redis: arriving after
    a read was cached, it would turn the next reads into misses (a busy machine delays it)."""
    cache = app.services.cache
    expected = cache.invalidations + (2 if cache._redis is not None else 1)  # here, then the echo
    created = await app.client.post("/api/nodes", headers=headers, json={"typeId": "t", "title": "hot"})
    assert created.status_code == 201
    async with asyncio.timeout(10):
        while cache.invalidations < expected:
            await asyncio.sleep(0.02)
    return str(created.json()["id"])


async def _cached(app: RunningApp, path: str, headers: dict[str, str]) -> None:
    """Read until cached."""
    async with asyncio.timeout(5):
        while (await app.client.get(path, headers=headers)).headers.get("x-cache") != "HIT":
            await asyncio.sleep(0.02)


async def test_a_cached_read_answers_alike_both_ways(app: RunningApp) -> None:
    admin = await app.bearer()
    node_id = await _node(app, admin)
    await _cached(app, f"/api/nodes/{node_id}", admin)
    count = HotCount(app)
    hot = await app.client.get(f"/api/nodes/{node_id}", headers=admin)
    assert count.answered == 1
    count.off = True
    full = await app.client.get(f"/api/nodes/{node_id}", headers=admin)
    assert _comparable(hot) == _comparable(full)
    assert hot.headers["x-cache"] == "HIT" and hot.headers["x-content-type-options"] == "nosniff"
    etag = {"If-None-Match": hot.headers["etag"], **admin}
    count.off = False
    hot_304 = await app.client.get(f"/api/nodes/{node_id}", headers=etag)
    count.off = True
    assert _comparable(hot_304) == _comparable(await app.client.get(f"/api/nodes/{node_id}", headers=etag))
    assert hot_304.status_code == 304


async def test_what_the_hot_path_may_not_decide_reaches_fastapi(app: RunningApp) -> None:
    admin = await app.bearer()
    node_id = await _node(app, admin)
    path = f"/api/nodes/{node_id}"
    await _cached(app, path, admin)
    refusals: list[tuple[dict[str, str], str, int]] = [
        ({}, path, 401),
        ({"Authorization": "Bearer not-a-token"}, path, 401),
        ({"Authorization": f"Basic {admin['Authorization'][7:]}"}, path, 401),
        (admin, "/api/nodes/bad id", 422),
        (admin, "/api/nodes/" + "a" * 201, 422),
        (admin, "/api/nodes/missing", 404),
    ]
    for headers, url, status in refusals:
        response = await app.client.get(url, headers=headers)
        assert response.status_code == status, (url, headers)
        assert "error" in response.json()


async def test_a_disabled_account_or_ended_session_is_refused_at_once(app: RunningApp) -> None:
    admin = await app.bearer()
    await app.client.post("/api/auth/register", json={"username": "vic", "password": PASSWORD})
    node_id = await _node(app, admin)
    viewer = await app.bearer("vic", PASSWORD)
    path = f"/api/nodes/{node_id}"
    for _ in range(2):
        assert (await app.client.get(path, headers=viewer)).status_code == 200  # the second is hot
    assert (await app.client.post("/api/admin/users/vic/disable", headers=admin)).is_success
    assert (await app.client.get(path, headers=viewer)).status_code == 401
    assert (await app.client.get(path, headers=admin)).status_code == 200
    await app.client.post("/api/auth/logout", headers=admin)
    assert (await app.client.get(path, headers=admin)).status_code == 401


async def test_hot_answers_are_counted_under_their_routes(app: RunningApp) -> None:
    admin = await app.bearer()
    node_id = await _node(app, admin)
    await _cached(app, f"/api/nodes/{node_id}", admin)
    before = (await app.client.get("/metrics")).text
    for _ in range(3):
        await app.client.get(f"/api/nodes/{node_id}", headers=admin)
        live = await app.client.get("/health/live")
        assert live.status_code == 200 and live.json()["status"] == "alive"
    after = (await app.client.get("/metrics")).text

    def count(text: str, sample: str) -> float:
        return sum(float(line[len(sample) + 1 :]) for line in text.splitlines() if line.startswith(sample + " "))

    for sample in (
        'codex_http_requests_total{method="GET",route="/api/nodes/{node_id}",status="200"}',
        'codex_http_requests_total{method="GET",route="/health/live",status="200"}',
        'codex_cache_requests_total{result="hit"}',
    ):
        assert count(after, sample) - count(before, sample) == 3, sample


async def _both_ways(
    app: RunningApp, count: HotCount, url: str, headers: list[tuple[str, str]]
) -> tuple[httpx.Response, httpx.Response]:
    count.off = True
    await app.client.get(url, headers=headers)  # cached by the route first, if it caches it at all
    count.off = False
    hot = await app.client.get(url, headers=headers)
    count.off = True
    full = await app.client.get(url, headers=headers)
    return hot, full


async def test_repeated_if_none_match_is_read_as_the_route_reads_it(app: RunningApp) -> None:
    """Two If-None-Match fields: the route reads the first (request.headers.get), so must the hot path;
    reading the last, it answered 304 where the route answers 200 (review 12)."""
    admin = await app.bearer()
    node_id = await _node(app, admin)
    path = f"/api/nodes/{node_id}"
    await _cached(app, path, admin)
    etag = (await app.client.get(path, headers=admin)).headers["etag"]
    count = HotCount(app)
    for first, last in (('"other"', etag), (etag, '"other"')):
        headers = [("Authorization", admin["Authorization"]), ("If-None-Match", first), ("If-None-Match", last)]
        hot, full = await _both_ways(app, count, path, headers)
        assert count.answered == 1
        count.answered = 0
        assert _comparable(hot) == _comparable(full), (first, last)


async def test_odd_requests_answer_alike_both_ways(app: RunningApp) -> None:
    """Crafted paths and headers get from the hot path exactly what the route gives them."""
    admin = await app.bearer()
    node_id = await _node(app, admin)
    path = f"/api/nodes/{node_id}"
    await _cached(app, path, admin)
    token = admin["Authorization"][7:]
    count = HotCount(app)
    variants: list[tuple[str, list[tuple[str, str]]]] = [
        (path, [("Authorization", f"bearer {token}")]),
        (path, [("Authorization", f"BEARER    {token}")]),
        (path, [("Authorization", f"Bearer\t{token}")]),
        (path, [("Authorization", "Bearer"), ("Authorization", f"Bearer {token}")]),
        (path, [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer forged")]),
        (path, [("Authorization", f"Bearer {token}x")]),
        (path + "/", [("Authorization", f"Bearer {token}")]),
        (path.replace("/nodes/", "/nodes//"), [("Authorization", f"Bearer {token}")]),
        ("/api/nodes/%2e%2e", [("Authorization", f"Bearer {token}")]),
        ("/api/nodes/" + "é", [("Authorization", f"Bearer {token}")]),
        ("/api/nodes/" + "a" * 5000, [("Authorization", f"Bearer {token}")]),
        (path.replace(node_id, "%" + node_id.encode().hex()[:2] + node_id[1:]), [("Authorization", f"Bearer {token}")]),
        (path + "?x=1", [("Authorization", f"Bearer {token}")]),
    ]
    for url, headers in variants:
        hot, full = await _both_ways(app, count, url, headers)
        assert hot.status_code == full.status_code, (url, headers)
        assert hot.status_code < 500, (url, headers)
        if hot.status_code in (200, 304):
            assert _comparable(hot) == _comparable(full), (url, headers)
    count.off = False
    for method in ("HEAD", "OPTIONS"):  # never answered before routing
        count.answered = 0
        response = await app.client.request(method, path, headers=admin)
        assert count.answered == 0 and response.status_code == 405, method


async def test_junk_query_strings_do_not_evict_a_cached_node(
    fresh_postgres: Postgres, redis_server: Redis, make_settings: SettingsFactory
) -> None:
    settings = make_settings(
        connection_string=fresh_postgres.url, redis_connection_string=redis_server.url, cache_max_entries=20
    )
    async for app in running(settings):
        admin = await app.bearer()
        path = f"/api/nodes/{await _node(app, admin)}"
        await _cached(app, path, admin)
        for n in range(25):
            assert (await app.client.get(f"{path}?junk={n}", headers=admin)).status_code == 200
        assert (await app.client.get(path, headers=admin)).headers["x-cache"] == "HIT"
        for n in range(5):  # lists too: keyed by their validated parameters
            assert (await app.client.get(f"/api/nodes?limit=5&junk={n}", headers=admin)).status_code == 200
        assert len(app.services.cache.entries) == 2
