"""Forged, stale and oversized access tokens: every one is a 401 JSON, never a 500 or a pass."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.conftest import RunningApp


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _refused(codex: RunningApp, token: str, *codes: str) -> None:
    response = await codex.client.get("/api/nodes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("www-authenticate") == "Bearer"
    if codes:
        assert response.json()["error"] in codes, response.text


async def test_alg_none_is_refused(codex: RunningApp) -> None:
    claims = _claims((await codex.login())["accessToken"])
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    await _refused(codex, f"{header}.{_b64(json.dumps(claims).encode())}.", "invalid_token")


async def test_a_token_signed_with_another_key_is_refused(codex: RunningApp) -> None:
    claims = _claims((await codex.login())["accessToken"])
    await _refused(codex, jwt.encode(claims, "not-the-servers-key-" + "y" * 40, algorithm="HS256"), "invalid_token")


async def test_an_expired_token_is_refused(codex: RunningApp) -> None:
    claims = _claims((await codex.login())["accessToken"])
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 60)
    secret = codex.services.settings.jwt_secret
    assert secret
    await _refused(codex, jwt.encode(claims, secret, algorithm="HS256"), "token_expired")


async def test_a_revoked_token_is_refused(codex: RunningApp) -> None:
    token = (await codex.login())["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await codex.client.post("/api/auth/logout", headers=headers)).status_code == 204
    await _refused(codex, token, "token_revoked", "session_ended")


async def test_a_tampered_payload_is_refused(codex: RunningApp) -> None:
    await codex.client.post("/api/auth/register", json={"username": "mallory", "password": "mallory-password"})
    token = (await codex.login("mallory", "mallory-password"))["accessToken"]
    header, _payload, signature = token.split(".")
    claims = _claims(token)
    claims["role"] = "admin"  # the signature no longer matches
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    await _refused(codex, forged, "invalid_token")
    response = await codex.client.get("/api/admin/users", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.parametrize("size", [8 * 1024, 64 * 1024])
async def test_an_oversized_token_is_refused(codex: RunningApp, size: int) -> None:
    claims = _claims((await codex.login())["accessToken"])
    claims["padding"] = "p" * size
    secret = codex.services.settings.jwt_secret
    assert secret
    await _refused(codex, jwt.encode(claims, "wrong-key-" + "z" * 40, algorithm="HS256"))
    await _refused(codex, "x" * size)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "....", "Bearer", "\u00e9t\u00e9.x.y"])
async def test_garbage_tokens_are_refused(codex: RunningApp, token: str) -> None:
    response = await codex.client.get("/api/nodes", headers={b"Authorization": f"Bearer {token}".encode()})
    assert response.status_code == 401, response.text
