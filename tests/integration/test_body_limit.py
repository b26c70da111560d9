"""The body limit holds for streamed bodies too: 413 JSON, nothing stored; small bodies pass."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.conftest import RunningApp


async def _chunks(body: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_streamed_body_over_the_limit_is_a_413_json(codex: RunningApp) -> None:
    editor = await codex.bearer()
    body = b'{"id": "big", "typeId": "t", "title": "big", "content": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await codex.client.post(
        "/api/nodes", headers={**editor, "Content-Type": "application/json"}, content=_chunks(body)
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "body_too_large" and response.json()["field"] == "body"
    assert (await codex.client.get("/api/nodes/big", headers=editor)).status_code == 404


async def test_a_streamed_body_under_the_limit_passes(codex: RunningApp) -> None:
    editor = await codex.bearer()
    body = b'{"id": "small", "typeId": "t", "title": "small"}'
    response = await codex.client.post(
        "/api/nodes", headers={**editor, "Content-Type": "application/json"}, content=_chunks(body, 7)
    )
    assert response.status_code == 201, response.text
