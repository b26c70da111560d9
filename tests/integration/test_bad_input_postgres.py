"""Data PostgreSQL would refuse is a 422 naming the field, never 503 'database down' (issue 8, 4 and 5)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.storage import graph
from app.storage.errors import classify
from tests.conftest import RunningApp, SettingsFactory, running
from tests.support.servers import Postgres

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_codex(fresh_postgres: Postgres, make_settings: SettingsFactory) -> AsyncIterator[RunningApp]:
    async for app in running(make_settings(connection_string=fresh_postgres.url)):
        yield app


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


async def test_bad_values_are_422_naming_the_field(pg_codex: RunningApp) -> None:
    h = await pg_codex.bearer()
    node = {"id": "n1", "typeId": "t", "title": "ok"}
    assert (await pg_codex.client.post("/api/nodes", headers=h, json=node)).status_code == 201
    raw = {**h, "content-type": "application/json"}
    attempts: list[tuple[str, str, dict[str, Any], str]] = [
        ("GET", "/api/nodes?q=%00", {}, "query.q"),
        ("GET", "/api/edges?role=a%00b", {}, "query.role"),
        ("GET", "/api/nodes/a%00b", {}, "path.node_id"),
        ("POST", "/api/nodes", {"json": {"typeId": "t", "title": "a\x00b"}}, "body.title"),
        ("POST", "/api/nodes", {"json": {"typeId": "t", "title": "x", "content": "\x00"}}, "body.content"),
        ("POST", "/api/nodes", {"json": {"typeId": "t", "title": "x", "meta": {"k": "\x00"}}}, "body.meta"),
        ("POST", "/api/nodes", {"content": '{"typeId":"t","title":"x","meta":{"v":NaN}}', "headers": raw}, "body.meta"),
        (
            "POST",
            "/api/nodes",
            {"content": '{"typeId":"t","title":"x","meta":{"v":[Infinity]}}', "headers": raw},
            "body.meta",
        ),
        ("POST", "/api/nodes", {"json": {"typeId": "t", "title": "x", "meta": _deep(300)}}, "body.meta"),
        ("POST", "/api/nodes", {"json": {"typeId": "t", "title": "x", "meta": {"n": [2**64]}}}, "body.meta"),
        ("PUT", "/api/nodes/n1", {"json": {"title": "y", "version": 10**23}}, "body.version"),
        ("POST", "/api/nodes", {"content": '{"typeId":"t","title":"x","meta":{"v":' + "9" * 5000 + "}}"}, "body"),
        ("POST", "/api/nodes", {"content": '{"typeId":"t","meta":' + "[" * 1000 + "]" * 1000 + "}"}, "body"),
        ("DELETE", f"/api/edges/{2**31}", {}, "path.edge_id"),
        ("POST", "/api/ai/extract", {"json": {"text": "abc\x00"}}, "body.text"),
        ("POST", "/api/auth/login", {"json": {"username": "ad\x00min", "password": "x"}}, "body.username"),
        ("POST", "/api/auth/refresh", {"json": {"refreshToken": "abc.\x00def"}}, "body.refreshToken"),
        ("PUT", "/api/admin/users/a%00b/role", {"json": {"role": "viewer"}}, "path.username"),
    ]
    for method, path, kwargs, field in attempts:
        kwargs.setdefault("headers", raw if "content" in kwargs else h)
        response = await pg_codex.client.request(method, path, **kwargs)
        assert response.status_code == 422, (method, path, response.status_code, response.text)
        assert response.json()["field"] == field, (path, response.json())
    listed = (await pg_codex.client.get("/api/nodes", headers=h)).json()
    assert listed["total"] == 1  # nothing of the above was stored
    assert (await pg_codex.client.get("/api/nodes/n1", headers=h)).json()["version"] == 1


async def test_a_driver_error_caused_by_data_is_4xx_and_its_values_are_not_logged(
    pg_codex: RunningApp, make_settings: SettingsFactory
) -> None:
    engine = pg_codex.services.storage.engine
    secret_value = "private-user-text\x00"
    with pytest.raises(Exception) as raised:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT CAST(:v AS text)"), {"v": secret_value})
    failure = classify(raised.value)
    assert failure.status == 422 and failure.code == "invalid_data"
    assert "private-user-text" not in str(raised.value)  # hide_parameters on the engine
    with pytest.raises(Exception) as too_big:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT CAST(:v AS integer)"), {"v": 10**23})
    assert classify(too_big.value).status in (409, 422)


async def test_no_write_is_committed_when_its_response_cannot_be_rendered(
    pg_codex: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await pg_codex.bearer()

    def broken(payload: Any) -> bytes:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(graph, "render_json", broken)
    with pytest.raises(RecursionError):  # the in-process transport re-raises what answered 500
        await pg_codex.client.post("/api/nodes", headers=h, json={"id": "ghost", "typeId": "t", "title": "x"})
    monkeypatch.undo()
    missing = await pg_codex.client.get("/api/nodes/ghost", headers=h)
    assert missing.status_code == 404, missing.text  # rolled back with the failed render


async def test_meta_at_the_depth_bound_round_trips(pg_codex: RunningApp) -> None:
    h = await pg_codex.bearer()
    created = await pg_codex.client.post("/api/nodes", headers=h, json={"typeId": "t", "title": "x", "meta": _deep(32)})
    assert created.status_code == 201, created.text
    assert json.dumps(created.json()["meta"]) == json.dumps(_deep(32))


async def test_a_database_error_in_a_request_is_logged_without_its_values(
    pg_codex: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await pg_codex.bearer()
    graph_store = pg_codex.services.storage.graph

    async def failing_read(node_id: str) -> dict[str, Any]:
        async with graph_store.engine.connect() as conn:
            await conn.execute(text("SELECT CAST(:v AS integer)"), {"v": "secret-user-text"})
        return {}

    monkeypatch.setattr(graph_store, "get_node", failing_read)
    response = await pg_codex.client.get("/api/nodes/n2", headers=h)
    assert response.status_code == 422 and response.json()["error"] == "invalid_data"
    log = (Path(pg_codex.services.settings.log_dir) / "server.log").read_text()
    assert "sqlstate=22" in log and "secret-user-text" not in log  # a data exception, named by class only
