"""The pack as a whole: named, described, graded, and enforced per environment."""

from __future__ import annotations

from infra.mock_runtime import Declaration
from policies.core import CONTAINER
from policies.evaluate import evaluate
from policies.pack import ALL_POLICIES, CONFIG_DIR, enforcement
from tests.policies.conftest import mutated


def test_every_policy_is_named_described_graded_and_has_a_fix() -> None:
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    for policy in ALL_POLICIES:
        assert policy.description and policy.severity and policy.remediation_steps and policy.enforcement_level


def test_enforcement_is_set_per_environment() -> None:
    assert {p.name for p in ALL_POLICIES} == set(enforcement("production"))
    assert enforcement("production")["docker-healthcheck"].value == "mandatory"
    assert enforcement("staging")["docker-healthcheck"].value == "advisory"
    assert (CONFIG_DIR / "production.json").exists() and (CONFIG_DIR.parent / "PulumiPolicy.yaml").exists()


def test_an_advisory_violation_does_not_block(staging: Declaration) -> None:
    resources = [
        (
            r.type,
            r.name,
            r.inputs
            if not (r.type == CONTAINER and r.name == "redis")
            else mutated(dict(r.inputs), lambda p: p.pop("healthcheck")),
        )
        for r in staging.custom()
    ]
    found = evaluate(resources, "Staging", stack="staging")
    assert [(v.policy, v.level) for v in found] == [("docker-healthcheck", "advisory")]
    assert [(v.policy, v.level) for v in evaluate(resources, "Production", stack="staging")] == [
        ("docker-healthcheck", "mandatory")
    ]
