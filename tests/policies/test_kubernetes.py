from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.mock_runtime import Declaration
from policies import kubernetes
from policies.core import DEPLOYMENT, HPA, SERVICE, STATEFULSET
from tests.policies.conftest import Props, check, mutated, props_of


def _c(props: Props) -> Any:
    return props["spec"]["template"]["spec"]["containers"][0]


def test_compliant_production_passes(production: Declaration) -> None:
    for resource in production.custom():
        for policy in kubernetes.POLICIES:
            assert check(policy, resource.type, resource.inputs) == [], (policy.name, resource.name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: _c(p)["resources"]["limits"].pop("memory"), "container app: no memory limit"),
        (lambda p: _c(p)["resources"]["limits"].pop("cpu"), "container app: no cpu limit"),
        (lambda p: _c(p)["resources"]["requests"].pop("cpu"), "container app: no cpu request"),
        (lambda p: _c(p)["resources"]["requests"].pop("memory"), "container app: no memory request"),
    ],
)
def test_requests_and_limits(production: Declaration, change: Callable[[Props], object], message: str) -> None:
    assert check(
        kubernetes.requests_and_limits, DEPLOYMENT, mutated(props_of(production, DEPLOYMENT, "app"), change)
    ) == [message]


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_probes(production: Declaration, probe: str) -> None:
    bad = mutated(props_of(production, STATEFULSET, "postgres"), lambda p: _c(p).pop(probe))
    assert check(kubernetes.probes, STATEFULSET, bad) == [f"container postgres: no {probe}"]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("codex", "container app: image codex has no tag"),
        ("codex:latest", "container app: image codex:latest is tagged latest"),
        ("codex:main", "container app: image tag main is not an immutable version"),
    ],
)
def test_pinned_image(production: Declaration, image: str, message: str) -> None:
    bad = mutated(props_of(production, DEPLOYMENT, "app"), lambda p: _c(p).update(image=image))
    assert check(kubernetes.pinned_image, DEPLOYMENT, bad) == [message]
    digest = mutated(props_of(production, DEPLOYMENT, "app"), lambda p: _c(p).update(image="c@sha256:ab"))
    assert check(kubernetes.pinned_image, DEPLOYMENT, digest) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: (
                _c(p)["securityContext"].pop("runAsNonRoot"),
                p["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
            ),
            "container app: runAsNonRoot is not set",
        ),
        (
            lambda p: _c(p)["securityContext"].update(readOnlyRootFilesystem=False),
            "container app: root filesystem is writable",
        ),
        (
            lambda p: _c(p)["securityContext"].pop("allowPrivilegeEscalation"),
            "container app: privilege escalation is allowed",
        ),
        (
            lambda p: _c(p)["securityContext"].update(capabilities={"drop": ["NET_RAW"]}),
            "container app: capabilities are not all dropped",
        ),
        (lambda p: _c(p)["securityContext"].update(privileged=True), "container app: runs privileged"),
    ],
)
def test_restricted(production: Declaration, change: Callable[[Props], object], message: str) -> None:
    assert check(kubernetes.restricted, DEPLOYMENT, mutated(props_of(production, DEPLOYMENT, "app"), change)) == [
        message
    ]


@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces(production: Declaration, field: str) -> None:
    bad = mutated(
        props_of(production, DEPLOYMENT, "app"), lambda p: p["spec"]["template"]["spec"].update({field: True})
    )
    assert check(kubernetes.host_namespaces, DEPLOYMENT, bad) == [f"{field} is on"]


def test_production_replicas(production: Declaration) -> None:
    one = mutated(props_of(production, DEPLOYMENT, "app"), lambda p: p["spec"].update(replicas=1))
    assert check(kubernetes.production_replicas, DEPLOYMENT, one) == ["the app Deployment has 1 replicas"]
    low = mutated(props_of(production, HPA, "app"), lambda p: p["spec"].update(minReplicas=2))
    assert check(kubernetes.production_replicas, HPA, low) == ["the app autoscaler may scale down to 2"]


def test_service_exposure(production: Declaration) -> None:
    node_port = mutated(props_of(production, SERVICE, "app"), lambda p: p["spec"].update(type="NodePort"))
    assert check(kubernetes.service_exposure, SERVICE, node_port) == ["type NodePort opens a port on every node"]
    balanced = mutated(props_of(production, SERVICE, "app"), lambda p: p["spec"].update(type="LoadBalancer"))
    assert check(kubernetes.service_exposure, SERVICE, balanced) == [
        "living-codex-app is a LoadBalancer; only the gateway may be",
        "the LoadBalancer is not externalTrafficPolicy: Local: clients arrive as node addresses",
    ]
    gateway = props_of(production, SERVICE, "gateway")
    assert check(kubernetes.service_exposure, SERVICE, gateway) == []
    cluster = mutated(gateway, lambda p: p["spec"].update(externalTrafficPolicy="Cluster"))
    assert check(kubernetes.service_exposure, SERVICE, cluster) == [
        "the LoadBalancer is not externalTrafficPolicy: Local: clients arrive as node addresses"
    ]


def test_the_backup_cronjob_is_held_to_the_same_rules(production: Declaration) -> None:
    cronjob = props_of(production, "kubernetes:batch/v1:CronJob", "postgres-backup")
    for policy in (kubernetes.requests_and_limits, kubernetes.restricted, kubernetes.pinned_image):
        assert check(policy, "kubernetes:batch/v1:CronJob", cronjob) == [], policy.name

    def privileged(p: Props) -> None:
        p["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]["privileged"] = (
            True
        )

    # pg-dump is an init container (the offsite copy runs after it): it is held to the rules too.
    assert check(kubernetes.restricted, "kubernetes:batch/v1:CronJob", mutated(cronjob, privileged)) == [
        "container pg-dump: runs privileged"
    ]
