"""The Pulumi program: one spec in, every service of the environment declared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

from infra.app_env import GATE_USERNAME, postgres_dsn, redis_dsn
from infra.components.app import App
from infra.components.canary import CanaryRollout, rolls_out
from infra.components.foundation import Foundation
from infra.components.gateway import Gateway
from infra.components.issuers import Issuers
from infra.components.observability import Observability
from infra.components.postgres import Postgres
from infra.components.redis import Redis
from infra.components.services import Service, generic_services
from infra.components.target import Target
from infra.providers import docker_provider, kubernetes_provider, registry_provider
from infra.secrets import stack_secrets
from infra.spec import EnvironmentSpec


@dataclass
class Environment:
    foundation: Foundation
    issuers: Issuers | None
    postgres: Postgres
    redis: Redis
    observability: Observability
    app: App
    gateway: Gateway
    canary: CanaryRollout | None
    prerequisites: list[str]
    services: list[Service]  # the catalogue's entries without a component of their own


class NoRelease(pulumi.RunError):
    """The stack names no image: nothing was promoted to it yet."""


def require_release(spec: EnvironmentSpec) -> str:
    if not spec.image:
        raise NoRelease(
            f"no release promoted to {spec.stack} yet: living-codex:image is unset. Deploy one with "
            f"`codexops deploy {spec.stack} --release <id>` (the main workflow does, by digest), or set "
            f"living-codex:image to <repository>@sha256:<digest> (pulumi config set --stack {spec.stack})"
        )
    return spec.image


def _secret_dsn(password: pulumi.Output[str], dsn: Callable[[str], str]) -> pulumi.Output[str]:
    """A connection string from the builder (infra/app_env.py), secret like the password in it."""
    value: pulumi.Output[str] = password.apply(dsn)
    return pulumi.Output.secret(value)


def build(spec: EnvironmentSpec) -> Environment:
    require_release(spec)
    target = Target(spec)
    target.registry = registry_provider(spec)  # reads image digests, without a Docker daemon
    if target.kubernetes:
        target.providers = [kubernetes_provider(spec), target.registry]
    else:
        target.providers = [docker_provider(spec), target.registry]
    secrets = stack_secrets(spec)
    target.secret_sources = secrets.sources_text
    pg_host = spec.postgres.externalHost or target.host("postgres")
    redis_host = spec.redis.externalHost or target.host("redis")
    secret_env = {
        "JWT_SECRET": secrets.jwt_secret,
        "CONNECTION_STRING": _secret_dsn(secrets.postgres_password, lambda p: postgres_dsn(pg_host, 5432, p)),
        "REDIS_CONNECTION_STRING": _secret_dsn(
            secrets.redis_password, lambda p: redis_dsn(redis_host, 6379, p, spec.redis.tls)
        ),
        "GATE_PASSWORD": secrets.gate_password,
    }
    target.secret_data = {
        **secret_env,
        "postgresPassword": secrets.postgres_password,
        "redisPassword": secrets.redis_password,
        "grafanaPassword": secrets.grafana_password,
    }

    def opts(*after: pulumi.Resource | None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(providers=target.providers, depends_on=[r for r in after if r])

    foundation = Foundation("foundation", target, target.secret_data, opts())
    issuers = Issuers("issuers", target, opts(foundation)) if target.kubernetes else None
    postgres = Postgres("postgres", target, secrets.postgres_password, opts(foundation))
    redis = Redis("redis", target, secrets.redis_password, opts(foundation, issuers))
    app_port = spec.ports.app
    observability = Observability(
        "observability", target, [f"{h}:{app_port}" for h in target.app_hosts], opts(foundation)
    )
    app = App("app", target, secret_env, opts(foundation, postgres, redis))
    if app.canary is not None:  # a Docker rollout step (codexops/releases/docker_canary.py)
        observability.scrape_canary(target, app.canary)
    services = generic_services(target, opts(foundation))
    upstreams = [f"{h}:{app_port}" for h in target.gateway_upstreams]
    gateway = Gateway("gateway", target, upstreams, opts(app, issuers), canary=app.canary)
    canary = CanaryRollout("canary", target, opts(app, observability)) if rolls_out(spec) else None
    pulumi.export("platform", spec.platform)
    pulumi.export("image", app.image_ref)
    # With the image, what a drift check or a preview sets to compare staging with what it runs (CODEX_RELEASE).
    pulumi.export("release", spec.release or "")
    pulumi.export("url", f"{'https' if spec.tls else 'http'}://{spec.domain}")
    pulumi.export("prerequisites", target.prerequisites)
    if gateway.address is not None:
        pulumi.export("loadBalancerAddress", gateway.address)

    # The gate's own account (an editor, created by the app at start): what CI logs in with.
    pulumi.export("gateUsername", GATE_USERNAME)
    pulumi.export("gatePassword", pulumi.Output.secret(secrets.gate_password))
    if postgres.restore_command:
        pulumi.export("restoreCommand", postgres.restore_command)
    return Environment(
        foundation, issuers, postgres, redis, observability, app, gateway, canary, target.prerequisites, services
    )
