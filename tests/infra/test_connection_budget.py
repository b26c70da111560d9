"""Every app replica's PostgreSQL pool fits the server's max_connections at the replicas' peak: the
spec sizes the pool (or refuses one that does not fit) and tells each platform's server its limit when
it is not PostgreSQL's default. Before, each replica kept 20, and production's 10-replica autoscaler
plus a surge replica needed 220 of the server's 100."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from codexops import localenv
from infra.catalogue import postgres_options
from infra.mock_runtime import Declaration
from infra.pg_scripts import docker_entrypoint
from infra.spec import RESERVED_CONNECTIONS, EnvironmentSpec, load_spec
from tests.infra.conftest import Variant, container, docker_env, pod_spec

STATEFULSET, CONFIG_MAP = "kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:ConfigMap"


def _fits(spec: EnvironmentSpec) -> bool:
    needed = spec.peak_app_replicas * spec.database_pool_size + RESERVED_CONNECTIONS
    return needed <= spec.postgres.maxConnections


@pytest.mark.parametrize("stack", ["staging", "production", "kind"])
def test_each_stack_files_pools_fit_its_server(stack: str) -> None:
    spec = load_spec(stack)
    assert _fits(spec) and spec.database_pool_size >= 1


def test_production_shares_the_server_among_its_autoscalers_peak() -> None:
    spec = load_spec("production")
    assert spec.peak_app_replicas == spec.autoscaling.maxReplicas + 1 == 11  # the HPA's 10 and maxSurge 1
    assert spec.database_pool_size == (100 - RESERVED_CONNECTIONS) // 11 == 8
    assert load_spec("staging").database_pool_size == 20  # 2 replicas and a canary: the cap


def test_the_pool_reaches_the_app_on_every_platform(staging: Declaration, production: Declaration) -> None:
    assert production.one(CONFIG_MAP, "app-config").inputs["data"]["DATABASE_POOL_SIZE"] == "8"
    assert docker_env(container(staging, "app-1"))["DATABASE_POOL_SIZE"] == "20"
    assert localenv.spec_env(load_spec("production"))["DATABASE_POOL_SIZE"] == "8"


def test_a_pool_that_does_not_fit_is_refused_naming_what_to_change() -> None:
    spec = load_spec("production").model_dump()
    spec["postgres"]["poolPerReplica"] = 20
    with pytest.raises(ValidationError, match=r"11 app replicas at peak \* 20 connections each \+ 8 reserved = 228"):
        EnvironmentSpec.model_validate(spec)
    spec["postgres"]["maxConnections"] = 228
    assert EnvironmentSpec.model_validate(spec).database_pool_size == 20


def test_more_replicas_than_connections_is_refused() -> None:
    spec = load_spec("production").model_dump()
    spec["autoscaling"]["maxReplicas"] = 100
    with pytest.raises(ValidationError, match=r"raise postgres\.maxConnections"):
        EnvironmentSpec.model_validate(spec)


def test_the_default_limit_leaves_every_server_as_it_was(staging: Declaration, production: Declaration) -> None:
    assert postgres_options(load_spec("production")) == ()
    assert "args" not in pod_spec(production, STATEFULSET, "postgres")["containers"][0]
    assert container(staging, "postgres")["entrypoints"] == ["sh", "-c", docker_entrypoint()]


def test_a_raised_limit_reaches_every_platforms_server(
    variant: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = "  living-codex:postgres:\n    mode: statefulset\n    maxConnections: 240\n"
    production = variant("production", ("  living-codex:postgres:\n    mode: statefulset\n", raised))
    server = pod_spec(production, STATEFULSET, "postgres")["containers"][0]
    assert server["args"] == ["postgres", "-c", "max_connections=240"]  # args replace the image's CMD
    assert production.one(CONFIG_MAP, "app-config").inputs["data"]["DATABASE_POOL_SIZE"] == "20"
    staging = variant(
        "staging", ("    mode: container\n    storage: 1Gi\n", "    mode: container\n    maxConnections: 150\n")
    )
    entrypoint = container(staging, "postgres")["entrypoints"][2]
    assert entrypoint.startswith("docker-entrypoint.sh postgres -c max_connections=150 & pid=$!;")
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path))
    local = localenv.LocalStack(staging.spec)
    config = localenv.supervisor_config(local, {}, {"releases": {}, "app_env": {}})
    program = config.split("[program:postgres]\n", 1)[1].split("\n\n", 1)[0]
    assert " -c unix_socket_permissions=0700 -c max_connections=150\n" in program
