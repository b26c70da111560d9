"""Hostile payloads: a viewer writing, oversized bodies, injection strings stored and returned verbatim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningApp

INJECTIONS = [
    "'; DROP TABLE nodes; --",
    '" OR 1=1 --',
    "1' UNION SELECT username, password_hash FROM users --",
    "<script>alert(document.cookie)</script>",
    "{{7*7}} ${7*7} #{7*7}",
    "../../../../etc/passwd",
    "$(rm -rf /) `id`",
    "%s%s%s%n %x",
    "\u202eevil\u202c \u200b zero-width",
    "line one\nline two\r\nX-Injected: yes",
    "100% _wildcards_ \\ backslash",
    "\U0001f600 emoji and \u4e2d\u6587",
]


async def test_a_viewer_cannot_write(codex: RunningApp) -> None:
    await codex.client.post("/api/auth/register", json={"username": "victor", "password": "victor-password"})
    viewer = await codex.bearer("victor", "victor-password")
    admin = await codex.bearer()
    node = (await codex.client.post("/api/nodes", headers=admin, json={"typeId": "t", "title": "kept"})).json()
    attempts = [
        codex.client.post("/api/nodes", headers=viewer, json={"typeId": "t", "title": "x"}),
        codex.client.put(f"/api/nodes/{node['id']}", headers=viewer, json={"title": "changed"}),
        codex.client.delete(f"/api/nodes/{node['id']}", headers=viewer),
        codex.client.post("/api/edges", headers=viewer, json={"fromId": node["id"], "toId": node["id"], "role": "r"}),
        codex.client.put("/api/admin/users/victor/role", headers=viewer, json={"role": "admin"}),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
    kept = await codex.client.get(f"/api/nodes/{node['id']}", headers=admin)
    assert kept.json()["title"] == "kept"


@pytest.mark.parametrize("declared", [True, False])  # False: chunked, no Content-Length
async def test_an_oversized_body_is_a_413_json_and_nothing_is_stored(codex: RunningApp, declared: bool) -> None:
    admin = await codex.bearer()
    body = b'{"typeId": "t", "title": "big", "content": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: the limit must hold while reading
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await codex.client.post(
        "/api/nodes",
        headers={**admin, "Content-Type": "application/json"},
        content=body if declared else streamed(),
    )
    assert response.status_code == 413, response.text[:200]
    assert response.json()["error"] == "body_too_large"
    listed = await codex.client.get("/api/nodes", headers=admin, params={"q": "big"})
    assert listed.json()["total"] == 0


async def test_injection_strings_are_stored_and_returned_verbatim(codex: RunningApp) -> None:
    admin = await codex.bearer()
    for text in INJECTIONS:
        created = await codex.client.post(
            "/api/nodes", headers=admin, json={"typeId": "attack", "title": text, "content": text, "meta": {text: text}}
        )
        assert created.status_code == 201, (text, created.text)
        fetched = (await codex.client.get(f"/api/nodes/{created.json()['id']}", headers=admin)).json()
        assert (fetched["title"], fetched["content"], fetched["meta"]) == (text, text, {text: text})
        found = await codex.client.get("/api/nodes", headers=admin, params={"q": text, "typeId": "attack"})
        assert found.status_code == 200, found.text
        assert text in [item["title"] for item in found.json()["items"]], (text, found.text[:300])
    every = await codex.client.get("/api/nodes", headers=admin, params={"typeId": "attack", "limit": 100})
    assert sorted(item["title"] for item in every.json()["items"]) == sorted(INJECTIONS)
