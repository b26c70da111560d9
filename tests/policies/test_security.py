from __future__ import annotations

from typing import Any

import pytest

from infra.mock_runtime import Declaration
from policies import security
from policies.core import CONFIGMAP, CONTAINER, DEPLOYMENT, SECRET, SERVICE
from tests.policies.conftest import Props, check, mutated, props_of


def _container(props: Props) -> Any:
    return props["spec"]["template"]["spec"]["containers"][0]


def test_compliant_production_passes(production: Declaration) -> None:
    for resource in production.custom():
        for policy in security.POLICIES:
            assert check(policy, resource.type, resource.inputs) == [], (policy.name, resource.name)


def test_gateway_https(production: Declaration) -> None:
    service = props_of(production, SERVICE, "gateway")
    no_443 = mutated(service, lambda p: p["spec"].update(ports=[{"name": "http", "port": 80}]))
    assert check(security.gateway_https, SERVICE, no_443) == ["the public LoadBalancer has no port 443: HTTPS is off"]
    config = props_of(production, CONFIGMAP, "gateway-config")
    plain = mutated(config, lambda p: p["data"].update({"nginx.conf": "listen 8080;"}))
    assert check(security.gateway_https, CONFIGMAP, plain) == [
        "nginx.conf has no TLS listener (ssl_certificate)",
        "nginx.conf sends no Strict-Transport-Security header",
    ]


def test_secrets_encrypted_in_config(production: Declaration, staging: Declaration) -> None:
    secret = props_of(production, SECRET, "secrets")
    plain = mutated(
        secret,
        lambda p: p["metadata"]["annotations"].update(
            {security.SOURCES_ANNOTATION: "jwtSecret=plaintext-config,redisPassword=generated"}
        ),
    )
    assert check(security.secrets_encrypted, SECRET, plain) == ["jwtSecret is a plaintext value in the stack file"]
    app = props_of(staging, CONTAINER, "app-1")
    plain_app = mutated(
        app,
        lambda p: p.update(
            labels=[{"label": security.SOURCES_ANNOTATION, "value": "postgresPassword=plaintext-config"}]
        ),
    )
    assert check(security.secrets_encrypted, CONTAINER, plain_app) == [
        "postgresPassword is a plaintext value in the stack file"
    ]


def test_jwt_secret_configured(production: Declaration) -> None:
    app = props_of(production, DEPLOYMENT, "app")
    literal = mutated(app, lambda p: _container(p)["env"].append({"name": "JWT_SECRET", "value": "x"}))
    assert check(security.jwt_secret, DEPLOYMENT, literal) == ["container app: JWT_SECRET is not read from a Secret"]
    secret = props_of(production, SECRET, "secrets")
    missing = mutated(secret, lambda p: p["stringData"].pop("JWT_SECRET"))
    assert check(security.jwt_secret, SECRET, missing) == ["the stack's Secret has no JWT_SECRET"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"name": "POSTGRES_PASSWORD", "value": "hunter2"},
            "container app: POSTGRES_PASSWORD is a literal credential",
        ),
        (
            {"name": "DB_URL", "value": "postgresql://u:pw@db/x"},
            "container app: DB_URL is a literal credential",
        ),
    ],
)
def test_credentials_from_secrets(production: Declaration, env: dict[str, str], message: str) -> None:
    app = props_of(production, DEPLOYMENT, "app")
    bad = mutated(app, lambda p: _container(p)["env"].append(env))
    assert check(security.credentials_from_secrets, DEPLOYMENT, bad) == [message]
    config = props_of(production, CONFIGMAP, "app-config")
    leaky = mutated(config, lambda p: p["data"].update(REDIS_PASSWORD="x"))
    assert check(security.credentials_from_secrets, CONFIGMAP, leaky) == [
        "ConfigMap key REDIS_PASSWORD holds a credential"
    ]


def test_a_secret_file_path_is_not_a_literal_credential(production: Declaration) -> None:
    grafana = props_of(production, DEPLOYMENT, "grafana")
    assert check(security.credentials_from_secrets, DEPLOYMENT, grafana) == []
    relative = mutated(grafana, lambda p: _container(p)["env"].append({"name": "ADMIN_PASSWORD_FILE", "value": "pw"}))
    assert check(security.credentials_from_secrets, DEPLOYMENT, relative) == [
        "container grafana: ADMIN_PASSWORD_FILE is a literal credential"
    ]


def test_redis_tls_and_password(production: Declaration, staging: Declaration) -> None:
    secret = props_of(production, SECRET, "secrets")
    plain = mutated(secret, lambda p: p["stringData"].update(REDIS_CONNECTION_STRING="redis://redis:6379/0"))
    assert check(security.redis_tls, SECRET, plain) == [
        "REDIS_CONNECTION_STRING is not TLS (rediss://)",
        "REDIS_CONNECTION_STRING has no password",
    ]
    app = props_of(staging, CONTAINER, "app-1")
    assert check(security.redis_tls, CONTAINER, app) == []
    open_redis = mutated(app, lambda p: p.update(envs=["REDIS_CONNECTION_STRING=redis://redis:6379/0"]))
    assert check(security.redis_tls, CONTAINER, open_redis) == ["REDIS_CONNECTION_STRING has no password"]


def test_nginx_security_headers(staging: Declaration) -> None:
    gateway = props_of(staging, CONTAINER, "gateway")
    bare = mutated(gateway, lambda p: p["uploads"][0].update(content="http { server { listen 8080; } }"))
    assert check(security.nginx_headers, CONTAINER, bare) == [
        "nginx.conf does not set X-Content-Type-Options",
        "nginx.conf does not set X-Frame-Options",
        "nginx.conf does not set Content-Security-Policy",
        "nginx.conf has no client_max_body_size",
    ]
