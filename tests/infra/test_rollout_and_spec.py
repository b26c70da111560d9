"""A config or secret change rolls the pods; what was hard-coded comes from the spec;
the autoscaler alone owns the app's replica count."""

from __future__ import annotations

import json
from typing import Any

from infra.components.target import CHECKSUM_ANNOTATION
from infra.mock_runtime import Declaration
from infra.spec import load_spec
from policies import stack
from tests.infra.conftest import Variant, container, deployment
from tests.policies.conftest import check_stack

WORKLOADS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")


def _checksums(declaration: Declaration) -> dict[str, str]:
    return {
        r.name: r.inputs["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]
        for r in declaration.custom()
        if r.type in WORKLOADS
    }


def test_every_pod_template_carries_a_config_checksum(production: Declaration) -> None:
    assert set(_checksums(production)) == {
        "app", "gateway", "prometheus", "alertmanager", "grafana", "jaeger", "postgres", "redis",
        "kube-state-metrics",
    }  # fmt: skip


def test_a_change_rolls_exactly_the_pods_that_use_it(variant: Variant) -> None:
    before = _checksums(variant("production"))  # the same stack name: it appears in rendered files
    # The stack's thresholds with only the latency lines moved (the file may set others: they stay).
    latency = load_spec("production").thresholds.p95LatencyMs
    moved = {"warning": latency.warning * 0.8, "critical": latency.critical * 0.9}
    block = {**load_spec("production").thresholds.model_dump(), "p95LatencyMs": moved}
    thresholds = variant("production", append=f"  living-codex:thresholds: {json.dumps(block)}\n")
    changed = {name for name, value in _checksums(thresholds).items() if value != before[name]}
    assert changed == {"prometheus", "grafana"}  # the alert rules and the dashboard's threshold lines
    secret = variant("production", append="  living-codex:postgresPassword:\n    secure: v1:rotated==\n")
    changed = {name for name, value in _checksums(secret).items() if value != before[name]}
    assert changed == {"app", "postgres"}  # the connection string and the database's own password
    proxies = variant("production", append="  living-codex:gateway:\n    trustedProxies: [10.0.0.0/8]\n")
    assert {n for n, v in _checksums(proxies).items() if v != before[n]} == {"gateway"}


def test_nginx_conf_is_not_mounted_by_sub_path(production: Declaration) -> None:
    for resource in production.custom():
        if resource.type in WORKLOADS:
            for c in resource.inputs["spec"]["template"]["spec"]["containers"]:
                assert all("subPath" not in m for m in c.get("volumeMounts", [])), resource.name
    nginx = deployment(production, "gateway")["spec"]["template"]["spec"]["containers"][0]
    # nginx runs under the reload supervisor (infra/reload_scripts.py), on the directory-mounted conf.
    assert "nginx -c /etc/nginx/living-codex/nginx.conf" in nginx["command"][2]
    assert {"name": "config", "mountPath": "/etc/nginx/living-codex", "readOnly": True} in nginx["volumeMounts"]


def _policy_ports(declaration: Declaration) -> dict[str, list[int]]:
    ports: dict[str, list[int]] = {}
    for r in declaration.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        rules: list[dict[str, Any]] = r.inputs["spec"].get("ingress", []) + r.inputs["spec"].get("egress", [])
        ports[r.inputs["metadata"]["name"]] = [p["port"] for rule in rules for p in rule.get("ports", [])]
    return ports


def test_network_policies_follow_the_app_port(variant: Variant) -> None:
    moved = _policy_ports(variant("production", append="  living-codex:ports:\n    app: 6000\n"))
    assert 6000 in moved["living-codex-app-from-gateway-and-prometheus"]
    assert 6000 in moved["living-codex-gateway-to-app"]
    assert 6000 in moved["living-codex-prometheus-to-app-and-alertmanager"]
    assert all(5002 not in ports for ports in moved.values())


def test_sizes_replicas_and_issuers_come_from_the_spec(variant: Variant) -> None:
    declaration = variant(
        "production",
        ("  living-codex:redis:\n", "  living-codex:redis:\n    resources: {memoryLimit: 512Mi}\n"),
        append=(
            "  living-codex:gateway:\n    replicas: 4\n"
            "  living-codex:internalIssuer: acme-internal\n"
            "  living-codex:observability:\n"
            "    jaeger: {resources: {memoryLimit: 1Gi}}\n"
            "    prometheus: {resources: {cpuLimit: '2'}, storage: 50Gi}\n"
        ),
    )

    def limits(type_: str, name: str) -> dict[str, str]:
        inputs = declaration.one(type_, name).inputs
        return dict(inputs["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"])

    assert deployment(declaration, "gateway")["spec"]["replicas"] == 4
    assert limits("kubernetes:apps/v1:StatefulSet", "redis")["memory"] == "512Mi"
    assert limits("kubernetes:apps/v1:Deployment", "jaeger")["memory"] == "1Gi"
    assert limits("kubernetes:apps/v1:Deployment", "prometheus")["cpu"] == "2"
    claim = declaration.one("kubernetes:core/v1:PersistentVolumeClaim", "prometheus-data").inputs
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    certificate = declaration.one("kubernetes:cert-manager.io/v1:Certificate", "redis-tls").inputs
    assert certificate["spec"]["issuerRef"]["name"] == "acme-internal"
    assert declaration.one("kubernetes:cert-manager.io/v1:ClusterIssuer", "acme-internal")


def test_docker_memory_limits_come_from_the_spec(variant: Variant) -> None:
    declaration = variant("staging", append="  living-codex:postgres:\n    resources: {memoryLimit: 2Gi}\n")
    assert container(declaration, "postgres")["memory"] == 2048


def test_the_autoscaler_alone_owns_the_app_replicas(production: Declaration) -> None:
    app = deployment(production, "app")
    assert "replicas" not in app["spec"]
    hpa = production.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "app").inputs["spec"]
    assert hpa["minReplicas"] == production.spec.autoscaling.minReplicas
    # An autoscaled Deployment still needs its disruption budget.
    resources = [(r.type, r.name, r.inputs) for r in production.custom()]
    assert check_stack(stack.pdb_coverage, resources) == []
    without_pdb = [(t, n, p) for t, n, p in resources if not (t.endswith("PodDisruptionBudget") and n == "app")]
    assert check_stack(stack.pdb_coverage, without_pdb) == ["app: replicated Deployment without a PodDisruptionBudget"]


def _app_config_map(declaration: Declaration) -> tuple[dict[str, Any], str]:
    """The app's ConfigMap inputs and the name its Deployment reads (envFrom)."""
    config_map = dict(declaration.one("kubernetes:core/v1:ConfigMap", "app-config").inputs)
    (source,) = deployment(declaration, "app")["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    return config_map, str(source["configMapRef"]["name"])


def test_a_release_rolls_onto_a_new_app_config_map_without_a_gap(variant: Variant, production: Declaration) -> None:
    # No fixed name: Pulumi autonames it and creates the new one before deleting the old (a fixed name on an
    # immutable ConfigMap is delete-then-create). The Deployment reads the name Pulumi gave.
    config_map, used = _app_config_map(production)
    assert "name" not in config_map["metadata"] and config_map["metadata"]["namespace"] == "living-codex"
    assert used.startswith("app-config-")
    releases = [variant("production", append=f"  living-codex:release: {r}\n") for r in ("1.0.0", "1.0.1")]
    (before, used), (after, used_after) = (_app_config_map(declaration) for declaration in releases)
    assert (before["data"]["CODEX_RELEASE"], after["data"]["CODEX_RELEASE"]) == ("1.0.0", "1.0.1")
    assert used_after != used  # another ConfigMap: the pod template changes and the Deployment rolls onto it
