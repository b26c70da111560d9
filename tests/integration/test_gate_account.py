"""The gate logs in with its own least-privilege account (an editor) that the app
provisions at start from GATE_PASSWORD, as ADMIN_PASSWORD provisions the admin. No admin password needed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.conftest import SettingsFactory, running

GATE_PASSWORD = "gate-password-for-tests-Zq8"


async def test_gate_password_provisions_an_editor_without_the_admin(make_settings: SettingsFactory) -> None:
    settings = make_settings(admin_password=None, gate_password=GATE_PASSWORD)
    async for codex in running(settings):
        tokens = await codex.login("codex-gate", GATE_PASSWORD)
        assert tokens["role"] == "editor"
        gate = {"Authorization": f"Bearer {tokens['accessToken']}"}
        created = await codex.client.post("/api/nodes", headers=gate, json={"typeId": "t", "title": "load"})
        assert created.status_code == 201, created.text  # what the load test's writers do
        assert (await codex.client.get("/api/admin/users", headers=gate)).status_code == 403  # never an admin


async def test_a_restart_restores_the_gate_account(make_settings: SettingsFactory) -> None:
    settings = make_settings(gate_password=GATE_PASSWORD)
    async for codex in running(settings):
        admin = await codex.bearer()
        promoted = await codex.client.put("/api/admin/users/codex-gate/role", headers=admin, json={"role": "admin"})
        assert promoted.status_code == 200
        assert (await codex.client.post("/api/admin/users/codex-gate/disable", headers=admin)).status_code == 200
    rotated = make_settings(gate_password=GATE_PASSWORD + "-rotated")
    async for codex in running(rotated):  # the stack rotated the secret: the new one works, as an editor
        tokens = await codex.login("codex-gate", GATE_PASSWORD + "-rotated")
        assert tokens["role"] == "editor"
        old = await codex.client.post("/api/auth/login", json={"username": "codex-gate", "password": GATE_PASSWORD})
        assert old.status_code == 401


def test_the_gate_account_is_never_the_admin_and_never_weak(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValidationError, match="GATE_USERNAME must differ from ADMIN_USERNAME"):
        make_settings(gate_username="admin", gate_password=GATE_PASSWORD)
    strong_jwt = "Jw7-q2VxLm9RtY4bNc8KjH3pFs6DgA1eZ"
    with pytest.raises(ValidationError, match=r"GATE_PASSWORD is (guessable|made of fewer)"):
        make_settings(environment="Staging", jwt_secret=strong_jwt, gate_password="correct-horse")
    staging = make_settings(
        environment="Staging", jwt_secret=strong_jwt, gate_password=GATE_PASSWORD + "-long-enough-9"
    )
    assert isinstance(staging, Settings)
