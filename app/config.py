"""Service configuration: one pydantic-settings class read from the runbook's environment variables."""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import cached_property
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.secret_strength import secret_weakness

GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
ENVIRONMENTS = ("development", "staging", "production")


class ConfigError(ValueError):
    """A setting is wrong; the message says which variable and how to fix it."""


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES={text!r}: {exc}; use comma-separated addresses or CIDRs") from exc


def parse_size(text: str) -> int:
    """Parse sizes like '2GB', '512MB', '1.5G' or a plain byte count into bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?B)?\s*", text.upper())
    if not match:
        raise ConfigError(f"HEAP_SIZE_LIMIT={text!r} is not a size; use a value like 2GB or 512MB")
    number, unit = float(match.group(1)), match.group(2)
    return int(number * 1024 ** " KMGT".index(unit or " "))


def parse_urls(urls: str) -> tuple[str, int]:
    """Turn CODEX_URLS ('http://+:5002', ASP.NET style) into a bind host and port."""
    first = urls.split(";")[0].strip()
    match = re.fullmatch(r"https?://([^:/]+|\[[^\]]+\]):(\d+)/?", first)
    if not match:
        raise ConfigError(f"CODEX_URLS={urls!r} must look like http://+:5002 or http://127.0.0.1:5002")
    host = match.group(1)
    if host in ("+", "*"):
        host = "0.0.0.0"
    return host.strip("[]"), int(match.group(2))


class Settings(BaseSettings):
    """Every variable of the runbook under its own name; CODEX_* replaces the .NET-only names."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    environment: str = Field(
        "Development", validation_alias=AliasChoices("CODEX_ENVIRONMENT", "ASPNETCORE_ENVIRONMENT")
    )
    urls: str = Field("http://+:5002", validation_alias=AliasChoices("CODEX_URLS", "ASPNETCORE_URLS"))
    instance_id: str = Field("", validation_alias="CODEX_INSTANCE_ID")

    connection_string: str | None = Field(None, validation_alias="CONNECTION_STRING")
    sqlite_connection_string: str = Field("Data Source=./ice_prod.db", validation_alias="SQLITE_CONNECTION_STRING")
    redis_connection_string: str | None = Field(None, validation_alias="REDIS_CONNECTION_STRING")
    enable_distributed_sessions: bool = Field(True, validation_alias="ENABLE_DISTRIBUTED_SESSIONS")
    session_storage_enable_fallback: bool = Field(True, validation_alias="SESSION_STORAGE_ENABLE_FALLBACK")
    redis_probe_interval_seconds: float = Field(2.0, validation_alias="REDIS_PROBE_INTERVAL_SECONDS")
    session_cleanup_interval_seconds: float = Field(60.0, validation_alias="SESSION_CLEANUP_INTERVAL_SECONDS")

    enable_performance_optimization: bool = Field(True, validation_alias="ENABLE_PERFORMANCE_OPTIMIZATION")
    enable_response_caching: bool = Field(True, validation_alias="ENABLE_RESPONSE_CACHING")
    enable_database_optimization: bool = Field(True, validation_alias="ENABLE_DATABASE_OPTIMIZATION")
    # Connections this replica keeps to PostgreSQL; the spec sizes it so every replica's fits (infra/spec.py).
    database_pool_size: int = Field(20, validation_alias="DATABASE_POOL_SIZE", ge=1, le=100)
    cache_ttl_seconds: float = Field(30.0, validation_alias="CACHE_TTL_SECONDS", gt=0)
    cache_max_entries: int = Field(1000, validation_alias="CACHE_MAX_ENTRIES", gt=0)
    cache_max_bytes: int = Field(16 * 1024 * 1024, validation_alias="CACHE_MAX_BYTES", gt=0)

    enable_ai_pipeline_monitoring: bool = Field(True, validation_alias="ENABLE_AI_PIPELINE_MONITORING")
    ai_queue_capacity: int = Field(100, validation_alias="AI_QUEUE_CAPACITY", gt=0)
    ai_workers: int = Field(5, validation_alias="AI_WORKERS", gt=0)
    ai_job_timeout_seconds: float = Field(30.0, validation_alias="AI_JOB_TIMEOUT_SECONDS", gt=0)
    ai_slow_job_seconds: float = Field(5.0, validation_alias="AI_SLOW_JOB_SECONDS", gt=0)
    ai_job_retention_seconds: float = Field(3600.0, validation_alias="AI_JOB_RETENTION_SECONDS")
    ai_extractor_url: str | None = Field(None, validation_alias="AI_EXTRACTOR_URL")
    ai_extractor_model: str = Field("llama3.2", validation_alias="AI_EXTRACTOR_MODEL")
    ai_extractor_api_key: str | None = Field(None, validation_alias="AI_EXTRACTOR_API_KEY")

    jwt_secret: str | None = Field(None, validation_alias="JWT_SECRET")
    jwt_expiration_hours: float = Field(24.0, validation_alias="JWT_EXPIRATION_HOURS", gt=0)
    refresh_expiration_hours: float = Field(24.0 * 7, validation_alias="REFRESH_EXPIRATION_HOURS")
    # Login throttling (app/throttle.py): free attempts per (account, address), the longest delay,
    # and the account-wide failure count after which a new address gets one free attempt.
    auth_max_failed_logins: int = Field(5, validation_alias="AUTH_MAX_FAILED_LOGINS", gt=0)
    auth_lockout_minutes: float = Field(15.0, validation_alias="AUTH_LOCKOUT_MINUTES", gt=0)
    auth_account_ceiling: int = Field(20, validation_alias="AUTH_ACCOUNT_CEILING", gt=0)
    # Addresses whose X-Real-IP / X-Forwarded-For are believed (the gateway); comma-separated IPs or CIDRs.
    trusted_proxies: str = Field("127.0.0.1,::1", validation_alias="TRUSTED_PROXIES")
    # The local revocation and account view (app/authview.py): trusted only while fresher than this.
    auth_view_max_staleness_seconds: float = Field(3.0, validation_alias="AUTH_VIEW_MAX_STALENESS_SECONDS", gt=0)
    admin_username: str = Field("admin", validation_alias="ADMIN_USERNAME")
    admin_password: str | None = Field(None, validation_alias="ADMIN_PASSWORD")
    # The gate's own account (an editor: what the load test needs), provisioned by the stack as a secret.
    gate_username: str = Field("codex-gate", validation_alias="GATE_USERNAME")
    gate_password: str | None = Field(None, validation_alias="GATE_PASSWORD")

    enable_api_docs: bool | None = Field(None, validation_alias="ENABLE_API_DOCS")
    prometheus_enabled: bool = Field(True, validation_alias="PROMETHEUS_ENABLED")
    grafana_enabled: bool = Field(True, validation_alias="GRAFANA_ENABLED")
    otel_exporter_otlp_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = Field("living-codex", validation_alias="OTEL_SERVICE_NAME")

    enable_memory_optimization: bool = Field(False, validation_alias="ENABLE_MEMORY_OPTIMIZATION")
    gc_mode: Literal["Server", "Workstation"] = Field("Workstation", validation_alias="GC_MODE")
    heap_size_limit: str | None = Field(None, validation_alias="HEAP_SIZE_LIMIT")
    memory_sample_interval_seconds: float = Field(5.0, validation_alias="MEMORY_SAMPLE_INTERVAL_SECONDS", gt=0)
    memory_window_samples: int = Field(60, validation_alias="MEMORY_WINDOW_SAMPLES", ge=4)
    memory_leak_threshold_mb_per_min: float = Field(2.0, validation_alias="MEMORY_LEAK_THRESHOLD_MB_PER_MIN", gt=0)
    # The leak detector ignores samples of the first N seconds after start: the allocator's warm-up.
    memory_leak_warmup_seconds: float = Field(120.0, validation_alias="MEMORY_LEAK_WARMUP_SECONDS", ge=0)
    memory_warning_percent: float = Field(80.0, validation_alias="MEMORY_WARNING_PERCENT")
    memory_critical_percent: float = Field(90.0, validation_alias="MEMORY_CRITICAL_PERCENT")
    # The stack's healthScore thresholds (the spec passes them in; the runbook's 80/60 by default).
    health_score_warning: float = Field(80.0, validation_alias="HEALTH_SCORE_WARNING", ge=0, le=100)
    health_score_critical: float = Field(60.0, validation_alias="HEALTH_SCORE_CRITICAL", ge=0, le=100)
    # The release this process serves (set by the deployer); /health reports it as its version.
    release: str | None = Field(None, validation_alias="CODEX_RELEASE")

    max_body_bytes: int = Field(1_048_576, validation_alias="MAX_BODY_BYTES", gt=0)
    shutdown_drain_seconds: float = Field(1.0, validation_alias="SHUTDOWN_DRAIN_SECONDS", ge=0)
    shutdown_grace_seconds: float = Field(20.0, validation_alias="SHUTDOWN_GRACE_SECONDS", gt=0)
    log_dir: str = Field("logs", validation_alias="LOG_DIR")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")

    chaos_latency_ms: float = Field(0.0, validation_alias="CHAOS_LATENCY_MS", ge=0)
    chaos_error_rate: float = Field(0.0, validation_alias="CHAOS_ERROR_RATE", ge=0, le=1)
    chaos_leak_mb_per_min: float = Field(0.0, validation_alias="CHAOS_LEAK_MB_PER_MIN", ge=0)
    chaos_fail_modules: str = Field("", validation_alias="CHAOS_FAIL_MODULES")
    chaos_allow_in_production: bool = Field(False, validation_alias="CHAOS_ALLOW_IN_PRODUCTION")

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value.lower() not in ENVIRONMENTS:
            raise ConfigError(f"CODEX_ENVIRONMENT={value!r} is not one of {', '.join(ENVIRONMENTS)}")
        return value.capitalize()

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        parse_urls(self.urls)
        if self.memory_warning_percent >= self.memory_critical_percent:
            raise ConfigError("MEMORY_WARNING_PERCENT must be below MEMORY_CRITICAL_PERCENT")
        if self.health_score_warning <= self.health_score_critical:
            raise ConfigError("HEALTH_SCORE_WARNING must be above HEALTH_SCORE_CRITICAL (lower scores are worse)")
        parse_networks(self.trusted_proxies)
        if self.gate_password and self.gate_username == self.admin_username:
            raise ConfigError(
                f"GATE_USERNAME must differ from ADMIN_USERNAME ({self.admin_username!r}): the gate is an editor"
            )
        if self.heap_size_limit:
            parse_size(self.heap_size_limit)
        if self.is_development:
            return self
        self._refuse_weak_secrets()
        if self.is_production and self.chaos_requested and not self.chaos_allow_in_production:
            named = ", ".join(f"{name}={value!r}" for name, value in self.chaos_variables.items())
            raise ConfigError(
                f"{named} {'is' if len(self.chaos_variables) == 1 else 'are'} set while CODEX_ENVIRONMENT is "
                f"Production; unset {'it' if len(self.chaos_variables) == 1 else 'them'}, "
                "or set CHAOS_ALLOW_IN_PRODUCTION=true for a deliberate game day"
            )
        return self

    def _refuse_weak_secrets(self) -> None:
        """JWT_SECRET always, ADMIN_PASSWORD and GATE_PASSWORD when set: outside Development each must be
        strong (ADMIN_PASSWORD resets the bootstrap admin at every start, so a weak one is a weak admin)."""
        named = {"JWT_SECRET": self.jwt_secret or "", "ADMIN_PASSWORD": self.admin_password or None}
        named["GATE_PASSWORD"] = self.gate_password or None  # unset or empty: no such account
        for name, value in named.items():
            weakness = secret_weakness(name, value) if value is not None else None
            if weakness:
                raise ConfigError(
                    f"{name} is {weakness}, and CODEX_ENVIRONMENT is {self.environment}. Set a random one, e.g. "
                    f"export {name}=$({GENERATE_HINT})"
                )

    @property
    def is_development(self) -> bool:
        return self.environment == "Development"

    @property
    def is_production(self) -> bool:
        return self.environment == "Production"

    @property
    def chaos_requested(self) -> bool:
        return bool(
            self.chaos_latency_ms or self.chaos_error_rate or self.chaos_leak_mb_per_min or self.chaos_failing_modules
        )

    @property
    def chaos_variables(self) -> dict[str, object]:
        """The chaos variables that are set, under their environment names."""
        values = {
            "CHAOS_LATENCY_MS": self.chaos_latency_ms,
            "CHAOS_ERROR_RATE": self.chaos_error_rate,
            "CHAOS_LEAK_MB_PER_MIN": self.chaos_leak_mb_per_min,
            "CHAOS_FAIL_MODULES": self.chaos_fail_modules,
        }
        return {name: value for name, value in values.items() if value}

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def api_docs_enabled(self) -> bool:
        """/docs, /redoc and /openapi.json: on in Development, elsewhere only with ENABLE_API_DOCS=true."""
        return self.is_development if self.enable_api_docs is None else self.enable_api_docs

    @property
    def chaos_failing_modules(self) -> frozenset[str]:
        return frozenset(m.strip() for m in self.chaos_fail_modules.split(",") if m.strip())

    @property
    def bind(self) -> tuple[str, int]:
        return parse_urls(self.urls)

    @cached_property
    def node_name(self) -> str:
        return self.instance_id or f"{socket.gethostname()}:{self.bind[1]}"

    @property
    def heap_limit_bytes(self) -> int | None:
        return parse_size(self.heap_size_limit) if self.heap_size_limit else None

    @property
    def sessions_use_redis(self) -> bool:
        return self.enable_distributed_sessions and bool(self.redis_connection_string)
