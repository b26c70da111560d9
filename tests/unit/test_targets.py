"""One resolver for every target: stack names, `local`, URLs; what it hands to the checklist and Locust."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexops.localenv import LocalStack, spec_env, stack_ports
from codexops.targets import Target, TargetError, resolve_target, spec_digest
from infra.spec import load_spec


@pytest.fixture(autouse=True)
def local_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEX_BACKEND", "local")
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.delenv("CODEX_PORT_BASE", raising=False)  # these are the declared ports


def test_the_default_stack_keeps_the_runbook_ports() -> None:
    target = resolve_target("local")
    assert target.kind == "local" and target.spec.stack == "staging"
    assert target.url == "http://127.0.0.1:5002" and target.prometheus_url == "http://127.0.0.1:9091"
    assert target.app_urls == ("http://127.0.0.1:5101", "http://127.0.0.1:5102")
    assert resolve_target("staging").url == target.url


def test_a_stack_with_a_port_base_gets_its_own_range() -> None:
    production = load_spec("production")
    ports = stack_ports(production)
    assert ports.gateway == 5200 and len(ports.apps) == production.replicas == 3
    staging = stack_ports(load_spec("staging"))
    assert not {ports.gateway, ports.postgres, ports.redis, ports.prometheus, *ports.apps} & {
        staging.gateway,
        staging.postgres,
        staging.redis,
        staging.prometheus,
        *staging.apps,
    }
    target = resolve_target("production")
    assert target.url == "http://127.0.0.1:5200" and not target.tls  # no TLS on loopback, whatever the spec says
    assert LocalStack(production).runtime != LocalStack(load_spec("staging")).runtime


def test_the_spec_decides_the_replicas_environment() -> None:
    spec = load_spec("production")
    env, t = spec_env(spec), spec.thresholds  # whatever Pulumi.production.yaml sets, or the defaults
    assert env["CODEX_ENVIRONMENT"] == "Production"
    assert env["HEAP_SIZE_LIMIT"] == str(spec.resources.memory_limit_bytes)
    assert (env["HEALTH_SCORE_WARNING"], env["HEALTH_SCORE_CRITICAL"]) == tuple(
        str(float(v)) for v in (t.healthScore.warning, t.healthScore.critical)
    )
    assert (env["MEMORY_WARNING_PERCENT"], env["MEMORY_CRITICAL_PERCENT"]) == tuple(
        str(float(v)) for v in (t.memoryUsagePercent.warning, t.memoryUsagePercent.critical)
    )


def test_with_the_pulumi_backend_a_stack_is_its_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_BACKEND", "pulumi")
    target = resolve_target("production")
    spec = load_spec("production")
    assert target.kind == "kubernetes" and target.url == f"https://{spec.domain}" and target.tls
    assert resolve_target("production", local=True).kind == "local"


def test_a_url_is_judged_by_the_named_stack_and_unknown_names_are_refused() -> None:
    target = resolve_target("https://codex.example.com/", stack="production")
    assert (target.kind, target.url, target.spec.stack, target.tls) == (
        "url",
        "https://codex.example.com",
        "production",
        True,
    )
    with pytest.raises(TargetError, match="use local, a URL or a stack"):
        resolve_target("prod")


def test_the_resolved_target_travels_as_json(tmp_path: Path) -> None:
    target = resolve_target("production")
    again = Target.load(target.save(tmp_path / "target.json"))
    assert again == target
    assert (tmp_path / "target.json").stat().st_mode & 0o077 == 0


def test_the_spec_digest_changes_with_the_spec() -> None:
    spec = load_spec("staging")
    stricter = spec.model_copy(update={"replicas": spec.replicas + 1})
    assert spec_digest(spec) == spec_digest(load_spec("staging"))
    assert spec_digest(spec) != spec_digest(stricter)
