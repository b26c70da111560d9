from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.config import ConfigError, Settings, parse_size, parse_urls
from app.secret_strength import secret_weakness
from codexops import localenv
from infra.spec import load_spec
from tests.conftest import ADMIN_PASSWORD
from tests.support.gateway import ReplicaSettings

STRONG = "q7Vw-2LmZx9RtY4bNc8KjH3pFs6DgA1e"  # 32 characters, 32 distinct


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


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "missing"),
        ("your-secure-jwt-secret-key", "known default"),
        ("short-secret", "shorter than 32"),
        ("a" * 32, "fewer than 10 distinct"),
        ("abcdefgh" * 4 + "hgfedcba", "fewer than 10 distinct"),
        ("your-secure-jwt-secret-key" * 2, "repeated"),
        (STRONG * 2, "repeated"),
    ],
)
def test_production_refuses_missing_default_short_or_low_entropy_secret(secret: str | None, reason: str) -> None:
    with pytest.raises(ValidationError, match=f"JWT_SECRET is .*{reason}"):
        Settings(environment="Production", jwt_secret=secret)


def test_production_accepts_a_strong_secret() -> None:
    assert Settings(environment="Production", jwt_secret=STRONG).is_production


@pytest.mark.parametrize("environment", ["Staging", "Production"])
@pytest.mark.parametrize(
    ("name", "value", "found"),
    [  # issue 19: each of these started in Production
        ("jwt_secret", "01234567890123456789012345678901", "a sequence"),
        ("jwt_secret", "abcdefghijklmnopqrstuvwxyz012345", "a sequence"),
        ("jwt_secret", "password1234567890password123456", "dictionary word"),
        ("jwt_secret", "your-secure-jwt-secret-key-2024!!", "dictionary word"),  # a default with a suffix
        ("jwt_secret", "qwertyuiopasdfghjkl;zxcvbnm,./12", "keyboard run"),
        ("admin_password", "admin", ""),
        ("admin_password", "a", ""),
        ("admin_password", "Admin2024!", ""),
        ("admin_password", "admin-password-for-tests", "dictionary word"),
        ("gate_password", "correct-horse", ""),
        ("gate_password", "codex-gate-password-2024", "dictionary word"),
    ],
)
def test_guessable_secrets_are_refused_naming_the_variable_and_a_generator(
    environment: str, name: str, value: str, found: str
) -> None:
    values: dict[str, Any] = {"jwt_secret": STRONG, name: value}
    with pytest.raises(ValidationError) as refused:
        Settings(environment=environment, **values)
    message = refused.value.errors()[0]["msg"]  # what `codexops serve` prints (codexops/cli.py)
    variable = name.upper()
    assert f"{variable} is " in message and found in message
    assert f"export {variable}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" in message
    assert len(value) < 6 or value not in message  # the reason names patterns, never the secret


def test_development_takes_any_secret() -> None:
    assert Settings(environment="Development", jwt_secret="a", admin_password="a", gate_password="a")


def test_generated_secrets_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the local environment and the test fixtures generate is strong enough, every time."""
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path))
    for n in range(20):
        local = localenv.local_secrets(localenv.LocalStack(load_spec("staging")))
        for key in ("JWT_SECRET", "ADMIN_PASSWORD", "GATE_PASSWORD"):
            assert secret_weakness(key, local[key]) is None, key
        shutil.rmtree(tmp_path / "staging")
        replica = ReplicaSettings(f"postgresql://unused/{n}")
        assert Settings(environment="Production", jwt_secret=replica.jwt_secret, admin_password=replica.admin_password)
    assert Settings(environment="Production", jwt_secret=STRONG, admin_password=ADMIN_PASSWORD)


def test_development_runs_without_a_secret() -> None:
    assert Settings(environment="Development", jwt_secret=None).jwt_secret is None


def test_chaos_refused_in_production_unless_allowed() -> None:
    with pytest.raises(ValidationError, match=r"CHAOS_LATENCY_MS=500\.0 is set .*CHAOS_ALLOW_IN_PRODUCTION"):
        Settings(environment="Production", jwt_secret=STRONG, chaos_latency_ms=500)
    with pytest.raises(ValidationError, match=r"CHAOS_ERROR_RATE=0\.5, CHAOS_FAIL_MODULES='cache' are set"):
        Settings(environment="Production", jwt_secret=STRONG, chaos_error_rate=0.5, chaos_fail_modules="cache")
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


def test_api_docs_only_in_development_unless_enabled() -> None:
    assert Settings(environment="Development").api_docs_enabled
    assert not Settings(environment="Production", jwt_secret=STRONG).api_docs_enabled
    assert Settings(environment="Staging", jwt_secret=STRONG, enable_api_docs=True).api_docs_enabled
    assert not Settings(environment="Development", enable_api_docs=False).api_docs_enabled
