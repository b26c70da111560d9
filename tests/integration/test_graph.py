"""Nodes and edges: CRUD, pagination, filters, concurrency, and the response cache."""

from __future__ import annotations

from tests.conftest import RunningApp


async def test_node_crud_with_versions(codex: RunningApp) -> None:
    h = await codex.bearer()
    created = await codex.client.post(
        "/api/nodes",
        headers=h,
        json={"id": "n.one", "typeId": "codex.note", "title": "One", "content": "first", "meta": {"k": 1}},
    )
    assert created.status_code == 201
    node = created.json()
    assert node["version"] == 1 and node["state"] == "ice" and node["meta"] == {"k": 1}
    updated = await codex.client.put("/api/nodes/n.one", headers=h, json={"title": "One!", "version": 1})
    assert updated.json()["version"] == 2 and updated.json()["title"] == "One!"
    stale = await codex.client.put("/api/nodes/n.one", headers=h, json={"title": "x", "version": 1})
    assert stale.status_code == 409 and "version 2" in stale.json()["message"]
    assert (await codex.client.get("/api/nodes/n.one", headers=h)).json()["content"] == "first"
    assert (await codex.client.delete("/api/nodes/n.one", headers=h)).status_code == 204
    assert (await codex.client.get("/api/nodes/n.one", headers=h)).status_code == 404
    assert (await codex.client.delete("/api/nodes/n.one", headers=h)).status_code == 404


async def test_duplicate_node_id_is_a_conflict_and_keeps_the_original(codex: RunningApp) -> None:
    h = await codex.bearer()
    await codex.client.post("/api/nodes", headers=h, json={"id": "same", "typeId": "t", "title": "A"})
    again = await codex.client.post("/api/nodes", headers=h, json={"id": "same", "typeId": "t", "title": "B"})
    assert again.status_code == 409
    assert (await codex.client.get("/api/nodes/same", headers=h)).json()["title"] == "A"


async def test_list_pagination_and_filters(codex: RunningApp) -> None:
    h = await codex.bearer()
    for i in range(7):
        await codex.client.post(
            "/api/nodes",
            headers=h,
            json={
                "id": f"p{i}",
                "typeId": "even" if i % 2 == 0 else "odd",
                "title": f"Page {i}",
                "state": "water" if i < 3 else "ice",
            },
        )
    page = (await codex.client.get("/api/nodes?limit=3&offset=3", headers=h)).json()
    assert page["total"] == 7 and [n["id"] for n in page["items"]] == ["p3", "p4", "p5"]
    evens = (await codex.client.get("/api/nodes?typeId=even", headers=h)).json()
    assert evens["total"] == 4
    water = (await codex.client.get("/api/nodes?state=water&typeId=odd", headers=h)).json()
    assert [n["id"] for n in water["items"]] == ["p1"]
    found = (await codex.client.get("/api/nodes?q=page%206", headers=h)).json()
    assert [n["id"] for n in found["items"]] == ["p6"]


async def test_edges(codex: RunningApp) -> None:
    h = await codex.bearer()
    for node in ("a", "b"):
        await codex.client.post("/api/nodes", headers=h, json={"id": node, "typeId": "t", "title": node})
    edge = await codex.client.post(
        "/api/edges", headers=h, json={"fromId": "a", "toId": "b", "role": "links", "weight": 0.5}
    )
    assert edge.status_code == 201 and edge.json()["weight"] == 0.5
    dup = await codex.client.post("/api/edges", headers=h, json={"fromId": "a", "toId": "b", "role": "links"})
    assert dup.status_code == 409
    missing = await codex.client.post("/api/edges", headers=h, json={"fromId": "a", "toId": "nowhere", "role": "links"})
    assert missing.status_code == 404 and missing.json()["field"] == "toId"
    listed = (await codex.client.get("/api/edges?fromId=a", headers=h)).json()
    assert listed["total"] == 1
    await codex.client.delete("/api/nodes/b", headers=h)
    assert (await codex.client.get("/api/edges?fromId=a", headers=h)).json()["total"] == 0


async def test_reads_are_cached_with_etag_and_invalidated_by_writes(codex: RunningApp) -> None:
    h = await codex.bearer()
    await codex.client.post("/api/nodes", headers=h, json={"id": "c1", "typeId": "t", "title": "v1"})
    first = await codex.client.get("/api/nodes/c1", headers=h)
    second = await codex.client.get("/api/nodes/c1", headers=h)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.headers["etag"] == second.headers["etag"]
    not_modified = await codex.client.get("/api/nodes/c1", headers={**h, "If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    await codex.client.put("/api/nodes/c1", headers=h, json={"title": "v2"})
    fresh = await codex.client.get("/api/nodes/c1", headers={**h, "If-None-Match": first.headers["etag"]})
    assert fresh.status_code == 200 and fresh.headers["x-cache"] == "MISS"
    assert fresh.json()["title"] == "v2"
    metrics = (await codex.client.get("/metrics/prometheus")).text
    assert 'codex_cache_requests_total{result="hit"} 2.0' in metrics


async def test_cache_is_bounded(make_settings) -> None:
    from tests.conftest import running

    async for app in running(make_settings(cache_max_entries=3)):
        h = await app.bearer()
        for offset in range(6):
            await app.client.get(f"/api/nodes?offset={offset}", headers=h)
        assert len(app.services.cache.entries) == 3


async def test_cache_is_bounded_in_bytes(make_settings) -> None:
    from tests.conftest import running

    async for app in running(make_settings(cache_max_bytes=200_000, cache_max_entries=1000)):
        h = await app.bearer()
        for i in range(6):  # six 20 KB nodes: list bodies of up to 120 KB
            await app.client.post(
                "/api/nodes", headers=h, json={"typeId": "t", "title": f"n{i}", "content": "c" * 20_000}
            )
        for offset in range(6):
            assert (await app.client.get(f"/api/nodes?offset={offset}", headers=h)).status_code == 200
        cache = app.services.cache
        assert sum(len(v.body) for v in cache.entries.values()) <= 200_000
        assert all(len(v.body) <= 200_000 // 16 for v in cache.entries.values())  # the big lists were not kept


async def test_caching_can_be_turned_off(make_settings) -> None:
    from tests.conftest import running

    async for app in running(make_settings(enable_response_caching=False)):
        h = await app.bearer()
        await app.client.get("/api/nodes", headers=h)
        second = await app.client.get("/api/nodes", headers=h)
        assert second.headers["x-cache"] == "MISS" and "etag" in second.headers
