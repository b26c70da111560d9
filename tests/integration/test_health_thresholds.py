"""/health judges with the stack's thresholds (passed in by the deployer), not with fixed numbers,
and names the release it serves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.config import ConfigError
from app.version import describe_version
from tests.conftest import SettingsFactory, running


async def _health(settings_factory: SettingsFactory, **overrides: object) -> tuple[int, dict[str, object]]:
    # A failing non-critical module costs 20 points: score 80.
    async for app in running(settings_factory(chaos_fail_modules="ai_pipeline", **overrides)):
        response = await app.client.get("/health")
        return response.status_code, response.json()
    raise AssertionError("the app did not start")


async def test_the_default_thresholds_call_a_score_of_80_degraded(make_settings: SettingsFactory) -> None:
    status, body = await _health(make_settings)
    assert (status, body["healthScore"], body["status"]) == (200, 80, "degraded")


async def test_a_stricter_stack_calls_the_same_score_unhealthy(make_settings: SettingsFactory) -> None:
    status, body = await _health(make_settings, health_score_warning=95, health_score_critical=90)
    assert (status, body["healthScore"], body["status"]) == (503, 80, "unhealthy")


async def test_health_version_and_the_start_log_name_the_release(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    release = "0.1.0.dev7+g0123456789ab+abcdef012345"
    with caplog.at_level(logging.INFO):
        _, body = await _health(make_settings, release=release)
    assert body["version"] == release
    assert f"starting Living Codex {release} " in caplog.text


async def test_a_checkout_without_a_release_reports_its_describe_version(make_settings: SettingsFactory) -> None:
    _, body = await _health(make_settings)
    assert body["version"] == describe_version(Path(__file__).resolve().parents[2]) != "1.0.0"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"health_score_warning": 50, "health_score_critical": 60}, "HEALTH_SCORE_WARNING"),
        ({"memory_warning_percent": 95, "memory_critical_percent": 90}, "MEMORY_WARNING_PERCENT"),
    ],
)
def test_inverted_thresholds_are_refused_by_name(
    make_settings: SettingsFactory, overrides: dict[str, float], variable: str
) -> None:
    with pytest.raises((ConfigError, ValueError), match=variable):
        make_settings(**overrides)
