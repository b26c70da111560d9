from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import ConfigError, Settings, parse_size, parse_urls

STRONG = "s" * 48


def test_runbook_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASPNETCORE_ENVIRONMENT", "Production")
    monkeypatch.setenv("ASPNETCORE_URLS", "http://+:6001")
    monkeypatch.setenv("JWT_SECRET", STRONG)
    monkeypatch.setenv("JWT_EXPIRATION_HOURS", "2")
    monkeypatch.setenv("ENABLE_RESPONSE_CACHING", "false")
    monkeypatch.setenv("HEAP_SIZE_LIMIT", "2GB")
    settings = Settings()
    assert settings.environment == "Production"
    assert settings.bind == ("0.0.0.0", 6001)
    assert settings.jwt_expiration_hours == 2
    assert settings.enable_response_caching is False
    assert settings.heap_limit_bytes == 2 * 1024**3


def test_codex_names_win_over_the_dotnet_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_URLS", "http://127.0.0.1:7000")
    assert Settings().bind == ("127.0.0.1", 7000)


@pytest.mark.parametrize("secret", [None, "your-secure-jwt-secret-key", "short-secret"])
def test_production_refuses_missing_default_or_short_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(environment="Production", jwt_secret=secret)


def test_production_accepts_a_strong_secret() -> None:
    assert Settings(environment="Production", jwt_secret=STRONG).is_production


def test_development_runs_without_a_secret() -> None:
    assert Settings(environment="Development", jwt_secret=None).jwt_secret is None


def test_chaos_refused_in_production_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="CHAOS_ALLOW_IN_PRODUCTION"):
        Settings(environment="Production", jwt_secret=STRONG, chaos_latency_ms=500)
    allowed = Settings(
        environment="Production", jwt_secret=STRONG, chaos_latency_ms=500, chaos_allow_in_production=True
    )
    assert allowed.chaos_requested


def test_unknown_environment_is_named() -> None:
    with pytest.raises(ValidationError, match="CODEX_ENVIRONMENT"):
        Settings(environment="prod")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2GB", 2 * 1024**3), ("512MB", 512 * 1024**2), ("1.5G", int(1.5 * 1024**3)), ("1000", 1000)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="HEAP_SIZE_LIMIT"):
        parse_size("lots")


def test_parse_urls_rejects_a_bad_address() -> None:
    with pytest.raises(ConfigError, match="CODEX_URLS"):
        parse_urls("localhost")
