"""Secrets: from the stack's encrypted config when set, else generated with pulumi-random."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from infra.spec import NAMESPACE, EnvironmentSpec


@dataclass
class StackSecrets:
    jwt_secret: pulumi.Output[str]
    postgres_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    grafana_password: pulumi.Output[str]


def _secret(spec: EnvironmentSpec, key: str, name: str) -> pulumi.Output[str]:
    if key in spec.secrets:
        return pulumi.Config(NAMESPACE).require_secret(key)
    generated = random.RandomPassword(name, length=48, special=False)
    return pulumi.Output.secret(generated.result)


def stack_secrets(spec: EnvironmentSpec) -> StackSecrets:
    return StackSecrets(
        jwt_secret=_secret(spec, "jwtSecret", "jwt-secret"),
        postgres_password=_secret(spec, "postgresPassword", "postgres-password"),
        redis_password=_secret(spec, "redisPassword", "redis-password"),
        grafana_password=_secret(spec, "grafanaPassword", "grafana-password"),
    )
