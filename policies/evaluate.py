"""Apply the pack to declared resources the way the engine would: each resource policy to each resource
(the same camelCase properties), each stack policy to the whole stack."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.pack import ALL_POLICIES, enforcement


@dataclass(frozen=True)
class Violation:
    policy: str
    severity: str
    level: str  # mandatory, advisory, disabled
    resource: str
    message: str
    hint: str

    @property
    def mandatory(self) -> bool:
        return self.level == "mandatory"


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def resource_args(resource_type: str, name: str, props: Mapping[str, Any]) -> ResourceValidationArgs:
    return ResourceValidationArgs(resource_type, props, f"urn:{resource_type}::{name}", name, _options(), None)


def urn(stack: str, resource_type: str, name: str) -> str:
    """A URN of the engine's form: the stack is in it (the release policy reads it there)."""
    return f"urn:pulumi:{stack}::living-codex::{resource_type}::{name}"


def stack_args(resources: Iterable[tuple[str, str, Mapping[str, Any]]], stack: str = "") -> StackValidationArgs:
    return StackValidationArgs(
        [PolicyResource(t, p, urn(stack, t, n), n, _options(), None, None, [], {}) for t, n, p in resources]
    )


def messages(policy: Policy, args: ResourceValidationArgs | StackValidationArgs) -> list[str]:
    """Call a policy directly, collecting what it reports."""
    found: list[str] = []
    policy.validate(args, lambda message, urn=None: found.append(message))  # type: ignore[attr-defined]
    return found


def evaluate(
    resources: Sequence[tuple[str, str, Mapping[str, Any]]],
    environment: str,
    policies: list[Policy] | None = None,
    stack: str = "",
) -> list[Violation]:
    levels = enforcement(environment)
    violations: list[Violation] = []
    for policy in policies or ALL_POLICIES:
        level = levels.get(policy.name, policy.enforcement_level or EnforcementLevel.MANDATORY)
        if level == EnforcementLevel.DISABLED:
            continue

        def add(resource: str, message: str, policy: Policy = policy, level: EnforcementLevel = level) -> None:
            violations.append(
                Violation(
                    policy.name,
                    str(policy.severity.value if policy.severity else ""),
                    level.value,
                    resource,
                    message,
                    policy.remediation_steps or "",
                )
            )

        if isinstance(policy, ResourceValidationPolicy):
            for type_, name, props in resources:
                for message in messages(policy, resource_args(type_, name, props)):
                    add(name, message)
        elif isinstance(policy, StackValidationPolicy):
            for message in messages(policy, stack_args(resources, stack)):
                resource, _, text = message.partition(": ")
                add(resource, text)
    return violations
