"""Grafana runs under a read-only root with the generated password; Alertmanager is
declared in both stacks with the spec's receivers; monitoring data lives on volumes that outlive pods."""

from __future__ import annotations

import yaml

from infra.mock_runtime import Declaration
from infra.render import render_alertmanager
from tests.infra.conftest import Variant, container, deployment, docker_env, pod_spec

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
RECEIVER = """  living-codex:alerting:
    receivers:
      - name: oncall
        webhookUrl: https://hooks.living-codex.org/alerts
        severities: [critical]
"""


def test_grafana_logs_to_the_console_with_writable_tmp_and_log_dirs(production: Declaration) -> None:
    pod = pod_spec(production, DEPLOYMENT, "grafana")
    grafana = pod["containers"][0]
    assert grafana["securityContext"]["readOnlyRootFilesystem"]
    assert {"name": "GF_LOG_MODE", "value": "console"} in grafana["env"]
    mounts = {m["mountPath"]: m["name"] for m in grafana["volumeMounts"]}
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert mounts["/tmp"] in empty_dirs and mounts["/var/log/grafana"] in empty_dirs


def test_staging_grafana_gets_the_generated_password(staging: Declaration) -> None:
    env = docker_env(container(staging, "grafana"))
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("generated-grafana-password")
    assert env["GF_LOG_MODE"] == "console"


def test_alertmanager_in_both_stacks_with_the_spec_receivers(variant: Variant) -> None:
    for stack in ("staging", "production"):
        declaration = variant(stack, append=RECEIVER)
        expected = render_alertmanager(declaration.spec)
        assert "https://hooks.living-codex.org/alerts" in expected
        if stack == "staging":
            uploads = {u["file"]: u["content"] for u in container(declaration, "alertmanager")["uploads"]}
            prometheus = {u["file"]: u["content"] for u in container(declaration, "prometheus")["uploads"]}
            assert uploads["/etc/alertmanager/alertmanager.yml"] == expected
            config = prometheus["/etc/prometheus/prometheus.yml"]
        else:
            maps = {r.name: r.inputs["data"] for r in declaration.of_type("kubernetes:core/v1:ConfigMap")}
            assert maps["alertmanager-config"]["alertmanager.yml"] == expected
            assert deployment(declaration, "alertmanager")["spec"]["replicas"] == 1
            config = maps["prometheus-config"]["prometheus.yml"]
        targets = yaml.safe_load(config)["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        assert targets == ["living-codex-alertmanager:9093"]


def test_prometheus_may_reach_alertmanager(production: Declaration) -> None:
    policies = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in production.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    ingress = policies["living-codex-alertmanager-from-prometheus"]["ingress"][0]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9093}]
    egress = policies["living-codex-prometheus-to-app-and-alertmanager"]["egress"][0]
    assert {"protocol": "TCP", "port": 9093} in egress["ports"]


def test_monitoring_data_is_on_persistent_volumes(staging: Declaration, production: Declaration) -> None:
    claims = {r.inputs["metadata"]["name"]: r for r in production.of_type(PVC)}
    for service, path in (
        ("prometheus", "/prometheus"),
        ("grafana", "/var/lib/grafana"),
        ("alertmanager", "/alertmanager"),
    ):
        pod = pod_spec(production, DEPLOYMENT, service)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == path)
        claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
        assert claims[claim].retain_on_delete and claims[claim].protect, service
        # A ReadWriteOnce claim cannot attach to a second pod during a rolling update.
        assert deployment(production, service)["spec"]["strategy"] == {"type": "Recreate"}
        docker = container(staging, service)
        assert [v["containerPath"] for v in docker["volumes"]] == [path], service
        volume = staging.one("docker:index/volume:Volume", f"{service}-data")
        assert volume.retain_on_delete, service
