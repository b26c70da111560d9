"""The Pulumi program under Pulumi's mock runtime, for both committed stacks."""

from __future__ import annotations

from typing import Any

from infra.manifests import kubernetes_manifests, validate
from infra.mock_runtime import Declaration
from tests.infra.conftest import docker_env

SECRET_ENV = {
    "JWT_SECRET",
    "CONNECTION_STRING",
    "REDIS_CONNECTION_STRING",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "GF_SECURITY_ADMIN_PASSWORD",
}
COMPONENTS = {"Foundation", "Postgres", "Redis", "Observability", "App", "Gateway"}


def _components(declaration: Declaration) -> set[str]:
    return {r.type.rsplit(":", 1)[-1] for r in declaration.resources if not r.custom}


def _pod_specs(declaration: Declaration) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.name, r.inputs["spec"]["template"]["spec"])
        for r in declaration.custom()
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
    ]


def _one(declaration: Declaration, type_: str, name: str) -> dict[str, Any]:
    return next(r.inputs for r in declaration.of_type(type_) if r.name == name)


def test_every_service_is_declared(staging: Declaration, production: Declaration) -> None:
    assert _components(staging) == COMPONENTS
    assert _components(production) == COMPONENTS | {"Issuers", "CanaryRollout"}
    containers = {r.inputs["name"] for r in staging.of_type("docker:index/container:Container")}
    assert containers == {
        f"living-codex-{s}"
        for s in ("gateway", "app-1", "app-2", "redis", "postgres", "prometheus", "alertmanager", "grafana", "jaeger")
    }
    deployments = {r.inputs["metadata"]["name"] for r in production.of_type("kubernetes:apps/v1:Deployment")}
    assert deployments == {
        f"living-codex-{s}"
        for s in ("app", "gateway", "prometheus", "alertmanager", "grafana", "jaeger", "kube-state-metrics")
    }
    statefulsets = {r.inputs["metadata"]["name"] for r in production.of_type("kubernetes:apps/v1:StatefulSet")}
    assert statefulsets == {"living-codex-postgres", "living-codex-redis"}


def test_children_are_parented_to_their_component(staging: Declaration, production: Declaration) -> None:
    for declaration in (staging, production):
        component_urns = {r.urn for r in declaration.resources if not r.custom}
        for resource in declaration.custom():
            if not resource.type.startswith(("random:", "pulumi:providers:")):
                assert resource.parent in component_urns, resource.name


def test_no_literal_secret_in_any_kubernetes_env(production: Declaration) -> None:
    for name, pod in _pod_specs(production):
        for container in pod["containers"]:
            for env in container.get("env", []):
                if env["name"] in SECRET_ENV:
                    assert "secretKeyRef" in env.get("valueFrom", {}), (name, env["name"])
                assert "generated-" not in str(env.get("value", "")), (name, env["name"])
    for config_map in production.of_type("kubernetes:core/v1:ConfigMap"):
        assert "generated-" not in str(config_map.inputs.get("data")), config_map.name


def test_docker_secrets_come_from_pulumi_secrets_not_literals(staging: Declaration) -> None:
    for container in staging.of_type("docker:index/container:Container"):
        for entry in container.inputs.get("envs", []):
            key, _, value = entry.partition("=")
            if key in SECRET_ENV:
                assert "generated-" in value, (container.name, key)  # from pulumi-random


def test_production_app_deployment(production: Declaration) -> None:
    spec = production.spec
    deployment = _one(production, "kubernetes:apps/v1:Deployment", "app")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].startswith("ghcr.io/living-codex/living-codex@sha256:")
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"] and pod["securityContext"]["runAsNonRoot"]
    drain, grace = spec.shutdown.drainSeconds, spec.shutdown.graceSeconds
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == drain
    assert pod["terminationGracePeriodSeconds"] >= drain + grace
    assert pod["topologySpreadConstraints"]


def test_every_production_container_is_bounded_and_probed(production: Declaration) -> None:
    for name, pod in _pod_specs(production):
        for container in pod["containers"]:
            assert container["resources"]["limits"]["memory"], name
            assert container.get("readinessProbe") and container.get("livenessProbe"), name
            assert container["securityContext"]["runAsNonRoot"], name


def test_autoscaling_and_disruption_budget(production: Declaration) -> None:
    hpa = _one(production, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "app")["spec"]
    scaling = production.spec.autoscaling  # what Pulumi.production.yaml sets
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling.minReplicas, scaling.maxReplicas)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": scaling.cpuPercent, "memory": scaling.memoryPercent}
    pdbs = {r.name for r in production.of_type("kubernetes:policy/v1:PodDisruptionBudget")}
    assert pdbs == {"app", "gateway"}


def test_default_deny_network_policy(production: Declaration) -> None:
    policies = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in production.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    deny = policies["living-codex-default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_tls_in_production_and_staging(staging: Declaration, production: Declaration) -> None:
    service = _one(production, "kubernetes:core/v1:Service", "gateway")
    assert 443 in [p["port"] for p in service["spec"]["ports"]]
    conf = _one(production, "kubernetes:core/v1:ConfigMap", "gateway-config")["data"]["nginx.conf"]
    assert "ssl_certificate" in conf and "Strict-Transport-Security" in conf
    assert production.of_type("kubernetes:cert-manager.io/v1:Certificate")
    redis_url = str(_one(production, "kubernetes:core/v1:Secret", "secrets")["stringData"]["REDIS_CONNECTION_STRING"])
    assert redis_url.startswith("rediss://")
    # Staging serves TLS too, from the certificate its secrets give (no cert-manager on Docker)...
    gateway = next(r for r in staging.of_type("docker:index/container:Container") if r.name == "gateway")
    assert "ssl_certificate" in gateway.inputs["uploads"][0]["content"]
    assert not staging.of_type("kubernetes:cert-manager.io/v1:Certificate")
    # ...while its Redis stays plain on the stack's own Docker network.
    staging_redis = docker_env(staging.one("docker:index/container:Container", "app-1").inputs)[
        "REDIS_CONNECTION_STRING"
    ]
    assert staging_redis.startswith("redis://")


def test_every_app_replica_runs_one_image(staging: Declaration, production: Declaration) -> None:
    app_images = {
        r.inputs["image"] for r in staging.of_type("docker:index/container:Container") if r.name.startswith("app-")
    }
    assert app_images == {staging.spec.image}  # the promoted digest, as given: nothing is built
    assert not staging.of_type("docker:index/image:Image")
    for name, pod in _pod_specs(production):
        if name == "app":
            assert len({c["image"] for c in pod["containers"]}) == 1


def test_staging_containers_have_healthchecks_limits_restart(staging: Declaration) -> None:
    for container in staging.of_type("docker:index/container:Container"):
        inputs = container.inputs
        assert inputs["healthcheck"]["tests"], container.name
        assert inputs["restart"] == "unless-stopped" and inputs["memory"] > 0, container.name
        assert not inputs.get("privileged") and inputs.get("networkMode") != "host", container.name


def test_production_manifests_validate_strictly(production: Declaration) -> None:
    findings = validate(kubernetes_manifests(production), production.spec.kubernetesVersion)
    assert [f"{f.manifest.label}: {f.message}" for f in findings if f.severity == "error"] == []
    assert [f.manifest.label for f in findings if f.severity == "skipped"] == []  # cert-manager's CRDs are vendored
    kinds = {m.kind for m in kubernetes_manifests(production)}
    assert {"Certificate", "ClusterIssuer"} <= kinds


def test_custom_resource_validation_names_a_bad_field(production: Declaration) -> None:
    """A Certificate is checked against cert-manager's CRD: a misspelt field and a missing one are errors."""
    certificate = next(m for m in kubernetes_manifests(production) if m.kind == "Certificate")
    spec = {key: value for key, value in certificate.body["spec"].items() if key != "issuerRef"}
    certificate.body = {**certificate.body, "spec": {**spec, "dnsNmes": ["codex.example"]}}
    messages = [f.message for f in validate([certificate], "1.30.0")]
    assert any("dnsNmes" in m for m in messages) and any("issuerRef" in m for m in messages), messages


def test_validation_names_a_bad_field(production: Declaration) -> None:
    manifests = [m for m in kubernetes_manifests(production) if m.kind == "Deployment"][:1]
    manifests[0].body = {**manifests[0].body, "spec": {**manifests[0].body["spec"], "replicas": "three"}}
    findings = validate(manifests, "1.30.0")
    assert findings and findings[0].severity == "error" and "spec.replicas" in findings[0].message
