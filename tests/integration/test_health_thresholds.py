"""/health judges with the stack's thresholds (passed in by the deployer), not with fixed numbers,
and names the release it serves."""

from __future__ import annotations

import pytest

from app.config import ConfigError
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


async def test_health_version_names_the_release(make_settings: SettingsFactory) -> None:
    _, body = await _health(make_settings, release="1.0.0+abcdef012345")
    assert body["version"] == "1.0.0+abcdef012345"


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
