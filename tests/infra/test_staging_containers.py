"""Staging's containers: staging rolls out rebuilt images, keeps Redis data, starts in order of health, encodes
passwords in connection strings, bounds Jaeger's memory."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from infra.app_env import postgres_dsn, redis_dsn
from infra.mock_runtime import Declaration
from tests.infra.conftest import Variant, container, docker_env, pod_spec

IMAGE = "docker:index/image:Image"


def test_app_containers_run_the_built_digest_not_the_tag(variant: Variant) -> None:
    staging = variant("staging", append="  living-codex:image: living-codex:dev\n")  # a developer's own stack
    image = staging.one(IMAGE, "app-image")
    assert image.inputs["imageName"] == staging.spec.image
    for name in ("app-1", "app-2"):
        ref = container(staging, name)["image"]
        assert ref.startswith("sha256:") and ref != staging.spec.image  # the mock's stand-in for repoDigest


def test_a_pushed_digest_is_run_without_a_build(variant: Variant) -> None:
    pushed = "ghcr.io/living-codex/living-codex@sha256:" + "cd" * 32
    declaration = variant("staging", append=f"  living-codex:image: {pushed}\n")
    assert not declaration.of_type(IMAGE)
    assert container(declaration, "app-1")["image"] == pushed


def test_redis_keeps_its_data_on_a_volume(staging: Declaration) -> None:
    redis = container(staging, "redis")
    assert redis["volumes"] == [{"volumeName": "living-codex-redis-data", "containerPath": "/data"}]
    assert "--appendonly yes --dir /data" in redis["command"][-1]


def test_containers_start_once_what_they_need_is_healthy(staging: Declaration) -> None:
    for name in ("postgres", "redis", "app-1", "app-2"):
        assert container(staging, name)["wait"] is True, name
    components = {r.name: r for r in staging.resources if not r.custom}
    urns = {r.name: r.urn for r in staging.custom()}
    assert {urns["postgres"], urns["redis"]} <= set(components["app"].dependencies)
    assert {urns["app-1"], urns["app-2"]} <= set(components["gateway"].dependencies)


def test_users_and_passwords_are_url_encoded_in_connection_strings() -> None:
    password = "p@ss:w/rd%?#"
    postgres = make_url(postgres_dsn("db", 5432, password, user="co@dex"))
    assert (postgres.username, postgres.password, postgres.host, postgres.database) == (
        "co@dex",
        password,
        "db",
        "livingcodex",
    )
    assert redis_dsn("cache", 6379, password) == "redis://:p%40ss%3Aw%2Frd%25%3F%23@cache:6379/0"
    assert redis_dsn("cache", 6379, "x", tls=True).startswith("rediss://:x@cache:6379/0?ssl_ca_certs=")


def test_jaeger_memory_is_bounded(staging: Declaration, production: Declaration) -> None:
    traces = str(staging.spec.observability.jaegerMaxTraces)
    assert docker_env(container(staging, "jaeger"))["MEMORY_MAX_TRACES"] == traces
    env = pod_spec(production, "kubernetes:apps/v1:Deployment", "jaeger")["containers"][0]["env"]
    assert {"name": "MEMORY_MAX_TRACES", "value": traces} in env
