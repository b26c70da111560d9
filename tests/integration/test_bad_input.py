"""Every client mistake is a 4xx with a JSON body naming the field; nothing stored is lost."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningApp

BAD_NODES = [
    ({"title": "no type"}, "body.typeId"),
    ({"typeId": "t", "title": ""}, "body.title"),
    ({"typeId": "t", "title": "x" * 501}, "body.title"),
    ({"typeId": "bad type!", "title": "x"}, "body.typeId"),
    ({"typeId": "t", "title": "x", "state": "plasma"}, "body.state"),
    ({"typeId": "t", "title": "x", "surprise": 1}, "body.surprise"),
    ({"typeId": "t", "title": "x", "meta": {"blob": "y" * 70_000}}, "body.meta"),
    ({"typeId": "t", "title": 5}, "body.title"),
]


@pytest.mark.parametrize(("payload", "field"), BAD_NODES)
async def test_bad_node_names_the_field(codex: RunningApp, payload: dict[str, object], field: str) -> None:
    h = await codex.bearer()
    response = await codex.client.post("/api/nodes", headers=h, json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_failed" and body["field"] == field
    assert body["requestId"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    [  # issue 19: pydantic's lax mode took "1" (and true, and 1.0) for the version 1
        ("PUT", "/api/nodes/strict", {"title": "x", "version": "1"}, "body.version"),
        ("PUT", "/api/nodes/strict", {"title": "x", "version": True}, "body.version"),
        ("PUT", "/api/nodes/strict", {"title": "x", "version": 1.0}, "body.version"),
        ("POST", "/api/edges", {"fromId": "strict", "toId": "strict", "role": "r", "weight": "0.5"}, "body.weight"),
        ("POST", "/api/edges", {"fromId": "strict", "toId": "strict", "role": "r", "weight": True}, "body.weight"),
    ],
)
async def test_numbers_must_be_json_numbers(
    codex: RunningApp, method: str, path: str, payload: dict[str, object], field: str
) -> None:
    h = await codex.bearer()
    await codex.client.post("/api/nodes", headers=h, json={"id": "strict", "typeId": "t", "title": "kept"})
    response = await codex.client.request(method, path, headers=h, json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_failed" and response.json()["field"] == field
    assert (await codex.client.get("/api/nodes/strict", headers=h)).json()["title"] == "kept"


async def test_integers_and_floats_still_pass_where_numbers_are_due(codex: RunningApp) -> None:
    h = await codex.bearer()
    await codex.client.post("/api/nodes", headers=h, json={"id": "n1", "typeId": "t", "title": "x"})
    patched = await codex.client.put("/api/nodes/n1", headers=h, json={"title": "y", "version": 1})
    assert patched.status_code == 200 and patched.json()["version"] == 2
    edge = {"fromId": "n1", "toId": "n1", "role": "self", "weight": 2}  # an int where a float is due
    assert (await codex.client.post("/api/edges", headers=h, json=edge)).status_code == 201


async def test_malformed_json_is_422(codex: RunningApp) -> None:
    h = await codex.bearer()
    response = await codex.client.post(
        "/api/nodes", headers={**h, "content-type": "application/json"}, content=b'{"typeId": '
    )
    assert response.status_code == 422 and response.json()["field"].startswith("body")


async def test_oversized_body_is_413(codex: RunningApp) -> None:
    h = await codex.bearer()
    response = await codex.client.post(
        "/api/nodes", headers=h, json={"typeId": "t", "title": "x", "content": "z" * 1_100_000}
    )
    assert response.status_code == 413 and response.json()["field"] == "body"


async def test_bad_query_parameters(codex: RunningApp) -> None:
    h = await codex.bearer()
    for query, field in (
        ("limit=0", "query.limit"),
        ("limit=abc", "query.limit"),
        ("offset=-1", "query.offset"),
        ("state=solid", "query.state"),
    ):
        response = await codex.client.get(f"/api/nodes?{query}", headers=h)
        assert response.status_code == 422 and response.json()["field"] == field, query


async def test_unknown_route_and_method(codex: RunningApp) -> None:
    assert (await codex.client.get("/nope")).json()["error"] == "not_found"
    assert (await codex.client.delete("/health")).status_code == 405


async def test_bad_input_leaves_stored_data_alone(codex: RunningApp) -> None:
    h = await codex.bearer()
    await codex.client.post("/api/nodes", headers=h, json={"id": "keep", "typeId": "t", "title": "kept"})
    await codex.client.put("/api/nodes/keep", headers=h, json={"title": ""})
    await codex.client.put("/api/nodes/keep", headers=h, json={"state": "plasma", "title": "changed"})
    node = (await codex.client.get("/api/nodes/keep", headers=h)).json()
    assert node["title"] == "kept" and node["version"] == 1


async def test_security_headers_on_every_response(codex: RunningApp) -> None:
    for response in (
        await codex.client.get("/health"),
        await codex.client.get("/nope"),
        await codex.client.post("/api/auth/login", json={}),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-request-id"]
    https = await codex.client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert "max-age" in https.headers["strict-transport-security"]


async def test_no_client_mistake_is_a_500(codex: RunningApp) -> None:
    h = await codex.bearer()
    nan_edge = '{"fromId": "a", "toId": "b", "role": "r", "weight": NaN}'
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/edges", {"content": nan_edge, "headers": {**h, "content-type": "application/json"}}),
        ("POST", "/api/edges", {"json": {"fromId": "a", "toId": "b", "role": "r", "weight": -1}}),
        ("POST", "/api/ai/extract", {"json": {}}),
        ("POST", "/api/ai/extract", {"json": {"nodeId": "missing-node"}}),
        ("GET", "/api/ai/jobs/" + "x" * 100, {}),
        ("DELETE", "/api/edges/notanumber", {}),
        ("PUT", "/api/admin/users/ghost/role", {"json": {"role": "admin"}}),
        ("PUT", "/api/admin/users/ghost/role", {"json": {"role": "god"}}),
        ("POST", "/api/auth/refresh", {"json": {"refreshToken": "garbage"}}),
        ("POST", "/api/auth/register", {"json": {"username": "a b", "password": "short"}}),
    ]
    for method, path, kwargs in attempts:
        kwargs.setdefault("headers", h)
        response = await codex.client.request(method, path, **kwargs)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
        assert "error" in response.json()
