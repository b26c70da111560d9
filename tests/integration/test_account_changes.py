"""A role change, a disable or a delete takes effect on the next request (issue 8, 1)."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_PASSWORD, RunningApp, SettingsFactory, running

PASSWORD = "correct horse battery"


async def _user(codex: RunningApp, admin: dict[str, str], username: str, role: str) -> dict[str, Any]:
    response = await codex.client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    if role != "viewer":
        changed = await codex.client.put(f"/api/admin/users/{username}/role", headers=admin, json={"role": role})
        assert changed.status_code == 200, changed.text
    return await codex.login(username, PASSWORD)


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def test_a_demoted_admin_cannot_make_itself_admin_again(codex: RunningApp) -> None:
    admin = await codex.bearer()
    eve = await _user(codex, admin, "eve-admin", "admin")
    demoted = await codex.client.put("/api/admin/users/eve-admin/role", headers=admin, json={"role": "viewer"})
    assert demoted.status_code == 200
    again = await codex.client.put("/api/admin/users/eve-admin/role", headers=_bearer(eve), json={"role": "admin"})
    assert again.status_code == 403 and "role viewer" in again.json()["message"]


async def test_a_demoted_editor_stops_writing_and_refresh_reads_the_role_again(codex: RunningApp) -> None:
    admin = await codex.bearer()
    ed = await _user(codex, admin, "eddie", "editor")
    assert (await codex.client.post("/api/nodes", headers=_bearer(ed), json={"typeId": "t", "title": "a"})).is_success
    await codex.client.put("/api/admin/users/eddie/role", headers=admin, json={"role": "viewer"})
    refused = await codex.client.post("/api/nodes", headers=_bearer(ed), json={"typeId": "t", "title": "b"})
    assert refused.status_code == 403
    refreshed = await codex.client.post("/api/auth/refresh", json={"refreshToken": ed["refreshToken"]})
    assert refreshed.status_code == 200 and refreshed.json()["role"] == "viewer"
    me = await codex.client.get("/api/auth/me", headers=_bearer(refreshed.json()))
    assert me.json()["role"] == "viewer"


async def test_a_deleted_user_can_neither_read_nor_refresh(codex: RunningApp) -> None:
    admin = await codex.bearer()
    dan = await _user(codex, admin, "daniel", "viewer")
    assert (await codex.client.get("/api/nodes", headers=_bearer(dan))).status_code == 200
    assert (await codex.client.delete("/api/admin/users/daniel", headers=admin)).status_code == 204
    read = await codex.client.get("/api/nodes", headers=_bearer(dan))
    assert read.status_code == 401 and read.json()["error"] == "account_unavailable"
    assert (await codex.client.post("/api/auth/refresh", json={"refreshToken": dan["refreshToken"]})).status_code == 401
    assert (await codex.client.delete("/api/admin/users/daniel", headers=admin)).status_code == 404
    users = (await codex.client.get("/api/admin/users", headers=admin)).json()
    assert "daniel" not in {u["username"] for u in users}


async def test_disable_ends_every_session_and_enable_allows_new_logins_only(codex: RunningApp) -> None:
    admin = await codex.bearer()
    dora = await _user(codex, admin, "dora", "editor")
    disabled = await codex.client.post("/api/admin/users/dora/disable", headers=admin)
    assert disabled.json() == {"username": "dora", "disabled": True}
    assert (await codex.client.get("/api/nodes", headers=_bearer(dora))).status_code == 401
    login = await codex.client.post("/api/auth/login", json={"username": "dora", "password": PASSWORD})
    assert login.status_code == 403 and login.json()["error"] == "account_disabled"
    assert (
        await codex.client.post("/api/auth/refresh", json={"refreshToken": dora["refreshToken"]})
    ).status_code == 401

    assert (await codex.client.post("/api/admin/users/dora/enable", headers=admin)).status_code == 200
    assert (await codex.client.get("/api/nodes", headers=_bearer(dora))).status_code == 401  # old tokens stay dead
    fresh = await codex.login("dora", PASSWORD)
    assert (await codex.client.get("/api/nodes", headers=_bearer(fresh))).status_code == 200


async def test_the_last_enabled_admin_cannot_be_removed(codex: RunningApp) -> None:
    admin = await codex.bearer()
    for method, path, body in (
        ("PUT", "/api/admin/users/admin/role", {"role": "editor"}),
        ("POST", "/api/admin/users/admin/disable", None),
        ("DELETE", "/api/admin/users/admin", None),
    ):
        response = await codex.client.request(method, path, headers=admin, json=body)
        assert response.status_code == 409 and response.json()["error"] == "last_admin", path
    assert (await codex.client.get("/api/admin/users", headers=admin)).status_code == 200  # still an admin
    second = await _user(codex, admin, "ada-admin", "admin")
    assert (await codex.client.post("/api/admin/users/ada-admin/disable", headers=admin)).status_code == 200
    assert (
        await codex.client.put("/api/admin/users/admin/role", headers=admin, json={"role": "editor"})
    ).status_code == 409
    await codex.client.post("/api/admin/users/ada-admin/enable", headers=admin)
    ada = await codex.bearer("ada-admin", PASSWORD)
    assert (await codex.client.put("/api/admin/users/admin/role", headers=admin, json={"role": "editor"})).is_success
    assert second["role"] == "admin" and (await codex.client.get("/api/admin/users", headers=ada)).status_code == 200


async def test_admin_password_at_start_recovers_the_bootstrap_admin(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async for codex in running(settings):
        admin = await codex.bearer()
        await _user(codex, admin, "ada-admin", "admin")
        ada = await codex.bearer("ada-admin", PASSWORD)
        await codex.client.put("/api/admin/users/admin/role", headers=ada, json={"role": "viewer"})
        assert (await codex.client.post("/api/admin/users/admin/disable", headers=ada)).status_code == 200
        for _ in range(8):
            await codex.client.post("/api/auth/login", json={"username": "admin", "password": "wrong-guess"})
        throttled = await codex.client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert throttled.status_code == 429
    async for codex in running(settings):  # a restart with ADMIN_PASSWORD set
        tokens = await codex.login()
        assert tokens["role"] == "admin"
        assert (await codex.client.get("/api/admin/users", headers=_bearer(tokens))).status_code == 200
