"""Secrets: from the stack's encrypted config when set, else generated with pulumi-random."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from infra.spec import NAMESPACE, EnvironmentSpec

SOURCES_ANNOTATION = "living-codex.io/secret-sources"  # read by the policy pack


@dataclass
class StackSecrets:
    jwt_secret: pulumi.Output[str]
    postgres_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    grafana_password: pulumi.Output[str]
    gate_password: pulumi.Output[str]  # the gate's own account: least privilege, no admin password in CI
    sources: dict[str, str]  # key -> encrypted-config, plaintext-config or generated

    @property
    def sources_text(self) -> str:
        return ",".join(f"{key}={source}" for key, source in sorted(self.sources.items()))


def _secret(spec: EnvironmentSpec, key: str, name: str, sources: dict[str, str]) -> pulumi.Output[str]:
    if key in spec.secrets:
        sources[key] = "plaintext-config" if key in spec.plaintext_secrets else "encrypted-config"
        return pulumi.Config(NAMESPACE).require_secret(key)
    sources[key] = "generated"
    generated = random.RandomPassword(name, length=48, special=False)
    return pulumi.Output.secret(generated.result)


def stack_secrets(spec: EnvironmentSpec) -> StackSecrets:
    sources: dict[str, str] = {}
    # Secrets that are only ever given (registryPassword, tlsCertificate, tlsKey, ...) are read where they
    # are used; their sources are recorded here too, so the policy pack refuses one left in plaintext.
    for key in spec.secrets:
        sources[key] = "plaintext-config" if key in spec.plaintext_secrets else "encrypted-config"
    return StackSecrets(
        jwt_secret=_secret(spec, "jwtSecret", "jwt-secret", sources),
        postgres_password=_secret(spec, "postgresPassword", "postgres-password", sources),
        redis_password=_secret(spec, "redisPassword", "redis-password", sources),
        grafana_password=_secret(spec, "grafanaPassword", "grafana-password", sources),
        gate_password=_secret(spec, "gatePassword", "gate-password", sources),
        sources=sources,
    )
