"""The Pulumi program: one spec in, every service of the environment declared."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.app_env import postgres_url, redis_url
from infra.components.app import App
from infra.components.foundation import Foundation
from infra.components.gateway import Gateway
from infra.components.observability import Observability
from infra.components.postgres import Postgres
from infra.components.redis import Redis
from infra.components.target import Target
from infra.secrets import stack_secrets
from infra.spec import EnvironmentSpec


@dataclass
class Environment:
    foundation: Foundation
    postgres: Postgres
    redis: Redis
    observability: Observability
    app: App
    gateway: Gateway


def build(spec: EnvironmentSpec) -> Environment:
    target = Target(spec)
    secrets = stack_secrets(spec)
    target.secret_sources = secrets.sources_text
    pg_host = spec.postgres.externalHost or target.host("postgres")
    redis_host = spec.redis.externalHost or target.host("redis")
    secret_env = {
        "JWT_SECRET": secrets.jwt_secret,
        "CONNECTION_STRING": postgres_url(pg_host, 5432, secrets.postgres_password),
        "REDIS_CONNECTION_STRING": redis_url(redis_host, 6379, secrets.redis_password, spec.redis.tls),
    }
    foundation = Foundation(
        "foundation",
        target,
        {
            **secret_env,
            "postgresPassword": secrets.postgres_password,
            "redisPassword": secrets.redis_password,
            "grafanaPassword": secrets.grafana_password,
        },
    )
    after = pulumi.ResourceOptions(depends_on=[foundation])
    postgres = Postgres("postgres", target, secrets.postgres_password, after)
    redis = Redis("redis", target, secrets.redis_password, after)
    app_hosts = target.app_hosts
    app_port = spec.ports.app
    observability = Observability("observability", target, [f"{h}:{app_port}" for h in app_hosts], after)
    app = App(
        "app",
        target,
        secret_env,
        observability.otlp_endpoint,
        pulumi.ResourceOptions(depends_on=[foundation, postgres, redis]),
    )
    gateway = Gateway(
        "gateway", target, [f"{h}:{app_port}" for h in app_hosts], pulumi.ResourceOptions(depends_on=[app])
    )
    pulumi.export("platform", spec.platform)
    pulumi.export("image", app.image_ref)
    pulumi.export("url", f"{'https' if spec.tls else 'http'}://{spec.domain}")
    return Environment(foundation, postgres, redis, observability, app, gateway)
