"""The app compresses only for clients that ask (nginx asks for none: it compresses itself)."""

from __future__ import annotations

from tests.conftest import RunningApp


async def test_gzip_only_when_asked(codex: RunningApp) -> None:
    editor = await codex.bearer()
    for i in range(8):
        body = {"id": f"gz{i}", "typeId": "t", "title": "compress me", "content": "x" * 300}
        assert (await codex.client.post("/api/nodes", headers=editor, json=body)).status_code == 201
    asked = await codex.client.get("/api/nodes?limit=20", headers={**editor, "Accept-Encoding": "gzip"})
    assert asked.headers.get("content-encoding") == "gzip" and len(asked.json()["items"]) == 8
    plain = await codex.client.get("/api/nodes?limit=20", headers={**editor, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.json()["items"]) == 8
