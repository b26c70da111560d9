"""Identity: register, roles, login, refresh rotation, logout revocation, lockout."""

from __future__ import annotations

import jwt

from tests.conftest import RunningApp

PASSWORD = "correct horse battery"


async def _register(codex: RunningApp, username: str) -> None:
    response = await codex.client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "viewer"


async def test_roles_are_enforced_on_writes_and_admin_routes(codex: RunningApp) -> None:
    await _register(codex, "vera")
    viewer = await codex.bearer("vera", PASSWORD)
    assert (await codex.client.get("/api/nodes", headers=viewer)).status_code == 200
    denied = await codex.client.post("/api/nodes", headers=viewer, json={"typeId": "t", "title": "x"})
    assert denied.status_code == 403 and "needs editor" in denied.json()["message"]
    assert (await codex.client.get("/api/admin/users", headers=viewer)).status_code == 403

    admin = await codex.bearer()
    promoted = await codex.client.put("/api/admin/users/vera/role", headers=admin, json={"role": "editor"})
    assert promoted.json() == {"username": "vera", "role": "editor"}
    editor = await codex.bearer("vera", PASSWORD)
    created = await codex.client.post("/api/nodes", headers=editor, json={"typeId": "t", "title": "x"})
    assert created.status_code == 201


async def test_requests_without_a_token_are_refused(codex: RunningApp) -> None:
    response = await codex.client.get("/api/nodes")
    assert response.status_code == 401
    assert response.json()["field"] == "Authorization"
    forged = jwt.encode({"sub": "admin"}, "another-secret-of-enough-length-000000", algorithm="HS256")
    response = await codex.client.get("/api/nodes", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


async def test_token_carries_jti_role_and_lifetime(codex: RunningApp) -> None:
    tokens = await codex.login()
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    assert claims["role"] == "admin" and len(claims["jti"]) == 32
    assert claims["exp"] - claims["iat"] == 24 * 3600  # JWT_EXPIRATION_HOURS default
    assert tokens["expiresIn"] == 24 * 3600


async def test_logout_revokes_the_token(codex: RunningApp) -> None:
    tokens = await codex.login()
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    assert (await codex.client.get("/api/auth/me", headers=headers)).status_code == 200
    assert (await codex.client.post("/api/auth/logout", headers=headers)).status_code == 204
    refused = await codex.client.get("/api/auth/me", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"] == "session_ended"
    again = await codex.client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert again.status_code == 401  # the session ended with the logout


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(codex: RunningApp) -> None:
    tokens = await codex.login()
    first = await codex.client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert first.status_code == 200
    new = first.json()
    assert new["refreshToken"] != tokens["refreshToken"]
    me = await codex.client.get("/api/auth/me", headers={"Authorization": f"Bearer {new['accessToken']}"})
    assert me.json()["username"] == "admin"
    replay = await codex.client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert replay.status_code == 401 and replay.json()["error"] == "refresh_token_reused"
    # Theft detection: the session ends for whoever holds it, the rotated tokens included.
    me = await codex.client.get("/api/auth/me", headers={"Authorization": f"Bearer {new['accessToken']}"})
    assert me.status_code == 401 and me.json()["error"] == "session_ended"
    again = await codex.client.post("/api/auth/refresh", json={"refreshToken": new["refreshToken"]})
    assert again.status_code == 401


async def test_repeated_failures_throttle_the_address_and_an_admin_clears_it(codex: RunningApp) -> None:
    await _register(codex, "mallory")
    for _ in range(5):
        response = await codex.client.post("/api/auth/login", json={"username": "mallory", "password": "wrong-guess"})
        assert response.status_code == 401
    throttled = await codex.client.post("/api/auth/login", json={"username": "mallory", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert throttled.json()["error"] == "login_throttled"
    metrics = (await codex.client.get("/metrics/prometheus")).text
    assert 'codex_auth_failures_total{reason="bad_password"} 5.0' in metrics
    assert 'codex_auth_failures_total{reason="throttled"} 1.0' in metrics

    admin = await codex.bearer()
    await codex.client.post("/api/admin/users/mallory/unlock", headers=admin)
    assert (
        await codex.client.post("/api/auth/login", json={"username": "mallory", "password": PASSWORD})
    ).status_code == 200


async def test_duplicate_username_is_a_conflict_naming_the_field(codex: RunningApp) -> None:
    await _register(codex, "dup-user")
    response = await codex.client.post("/api/auth/register", json={"username": "dup-user", "password": PASSWORD})
    assert response.status_code == 409 and response.json()["field"] == "username"


async def test_a_username_differing_only_in_case_is_taken(codex: RunningApp) -> None:
    """`Admin` registered beside `admin` (201), a second account a user or an admin would take
    for the first."""
    for name in ("Admin", "ADMIN"):
        response = await codex.client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "username_taken" and response.json()["field"] == "username"
    await _register(codex, "Carol.Case")
    taken = await codex.client.post("/api/auth/register", json={"username": "carol.CASE", "password": PASSWORD})
    assert taken.status_code == 409 and taken.json()["field"] == "username"


async def test_login_matches_the_normalised_name_and_shares_its_throttle(codex: RunningApp) -> None:
    await _register(codex, "Dana")
    for name in ("dana", "DANA", "\uff24\uff41\uff4e\uff41"):  # the last: fullwidth, NFKC makes it Dana
        answer = await codex.client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert answer.status_code == 200, (name, answer.text)
    for name in ("dana", "Dana", "dAna", "daNa", "danA"):  # five free failures in all, not five per spelling
        answer = await codex.client.post("/api/auth/login", json={"username": name, "password": "wrong-guess"})
        assert answer.status_code == 401
    throttled = await codex.client.post("/api/auth/login", json={"username": "DANA", "password": "wrong-guess"})
    assert throttled.status_code == 429 and throttled.json()["error"] == "login_throttled"


async def test_sessions_are_counted(codex: RunningApp) -> None:
    await codex.login()
    tokens = await codex.login()
    await codex.client.post("/api/auth/logout", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
    text = (await codex.client.get("/metrics/prometheus")).text
    assert "codex_active_sessions 1.0" in text and "codex_revoked_tokens 1.0" in text


async def test_a_remembered_token_is_still_refused_once_expired(make_settings) -> None:
    import asyncio

    from tests.conftest import running

    # 3 s: the expiry is whole seconds, so the token may live only 2 s of them, time enough to be used once.
    async for app in running(make_settings(jwt_expiration_hours=3 / 3600)):
        headers = await app.bearer()
        assert (await app.client.get("/api/auth/me", headers=headers)).status_code == 200  # now remembered
        await asyncio.sleep(4.1)
        expired = await app.client.get("/api/auth/me", headers=headers)
        assert expired.status_code == 401 and expired.json()["error"] == "token_expired"
        token = headers["Authorization"].removeprefix("Bearer ")
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        refused = await app.client.get("/api/auth/me", headers={"Authorization": f"Bearer {tampered}"})
        assert refused.status_code == 401
