from __future__ import annotations

from infra.mock_runtime import Declaration
from policies import docker, stack
from policies.core import CONTAINER, NETWORK_POLICY, PDB, SERVICE
from tests.policies.conftest import check, check_stack, mutated, props_of


def test_compliant_staging_passes(staging: Declaration) -> None:
    for resource in staging.custom():
        for policy in docker.POLICIES:
            assert check(policy, resource.type, resource.inputs) == [], (policy.name, resource.name)


def test_docker_rules(staging: Declaration) -> None:
    redis = props_of(staging, CONTAINER, "redis")
    assert check(docker.healthcheck, CONTAINER, mutated(redis, lambda p: p.pop("healthcheck"))) == [
        "container living-codex-redis has no healthcheck"
    ]
    assert check(docker.restart_policy, CONTAINER, mutated(redis, lambda p: p.pop("restart"))) == [
        "container living-codex-redis has restart policy no"
    ]
    assert check(docker.memory_limit, CONTAINER, mutated(redis, lambda p: p.pop("memory"))) == [
        "container living-codex-redis has no memory limit"
    ]
    assert check(docker.unprivileged, CONTAINER, mutated(redis, lambda p: p.update(privileged=True))) == [
        "container living-codex-redis is privileged"
    ]
    assert check(docker.unprivileged, CONTAINER, mutated(redis, lambda p: p.update(networkMode="host"))) == [
        "container living-codex-redis uses the host network"
    ]


def _resources(declaration: Declaration) -> list[tuple[str, str, dict[str, object]]]:
    return [(r.type, r.name, dict(r.inputs)) for r in declaration.custom()]


def test_stack_policies_pass_on_both_programs(staging: Declaration, production: Declaration) -> None:
    for declaration in (staging, production):
        for policy in stack.POLICIES:
            assert check_stack(policy, _resources(declaration)) == [], policy.name


def test_pdb_coverage(production: Declaration) -> None:
    without = [r for r in _resources(production) if not (r[0] == PDB and r[1] == "app")]
    assert check_stack(stack.pdb_coverage, without) == ["app: replicated Deployment without a PodDisruptionBudget"]


def test_default_deny(production: Declaration) -> None:
    without = [r for r in _resources(production) if not (r[0] == NETWORK_POLICY and r[1] == "default-deny")]
    assert check_stack(stack.default_deny, without) == ["living-codex: namespace has no default-deny NetworkPolicy"]


def test_services_select_pods(production: Declaration) -> None:
    resources = _resources(production)
    for index, (type_, name, props) in enumerate(resources):
        if type_ == SERVICE and name == "app":
            resources[index] = (type_, name, mutated(props, lambda p: p["spec"].update(selector={"x": "y"})))
    assert check_stack(stack.services_select_pods, resources) == ["app: selector {'x': 'y'} matches no workload's pods"]


def test_app_monitored(staging: Declaration) -> None:
    resources = _resources(staging)
    assert check_stack(stack.app_monitored, [r for r in resources if r[1] != "prometheus"]) == [
        "stack: no Prometheus configuration is declared"
    ]
    for index, (type_, name, props) in enumerate(resources):
        if name == "prometheus":
            resources[index] = (
                type_,
                name,
                mutated(
                    props,
                    lambda p: p.update(
                        uploads=[{"file": "/etc/prometheus/prometheus.yml", "content": "scrape_configs: []"}]
                    ),
                ),
            )
    assert check_stack(stack.app_monitored, resources) == [
        "prometheus: no scrape job reads the app's /metrics/prometheus",
        "prometheus: no alert rules are loaded",
    ]
