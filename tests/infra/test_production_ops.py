"""Production's operations under Pulumi's mocks: backups leave the cluster and are restore-checked, DNS egress reaches only
the cluster DNS, PDBs never block a drain, Grafana's password rotates, the load balancer's address is an
output, staging Redis is not root, every checkov skip says why."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.grafana_admin import PASSWORD_FILE, RESET_ADMIN_PASSWORD
from infra.mock_runtime import Declaration
from infra.pg_scripts import OFFSITE_SCRIPT, RESTORE_CHECK_SCRIPT
from infra.spec import ROOT
from tests.infra.conftest import Variant, container, pod_spec

CRONJOB = "kubernetes:batch/v1:CronJob"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _job_pod(declaration: Declaration, name: str) -> dict[str, Any]:
    return dict(declaration.one(CRONJOB, name).inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def _policy(declaration: Declaration, name: str) -> dict[str, Any]:
    return dict(declaration.one(NETWORK_POLICY, name).inputs["spec"])


def test_each_verified_dump_is_copied_offsite_with_credentials_from_a_secret(production: Declaration) -> None:
    offsite = production.spec.postgres.backup.offsite
    assert offsite is not None
    pod = _job_pod(production, "postgres-backup")
    (copy,) = pod["containers"]
    assert [c["name"] for c in pod["initContainers"]] == ["pg-dump"]  # the copy runs only after a good dump
    assert copy["command"] == ["sh", "-c", OFFSITE_SCRIPT]
    env = {e["name"]: e for e in copy["env"]}
    assert env["BACKUP_DESTINATION"]["value"] == offsite.url == "s3://living-codex-backups/postgres"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": offsite.secretName, "key": key}
    assert any(offsite.secretName in p for p in production.environment.prerequisites)  # type: ignore[union-attr]
    egress = _policy(production, "backup-to-object-storage")
    assert egress["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "living-codex-postgres-backup"
    assert egress["egress"] == [{"ports": [{"protocol": "TCP", "port": 443}]}]


def test_without_offsite_the_dump_is_the_job_and_nothing_leaves(variant: Variant) -> None:
    kind = variant("kind")
    pod = _job_pod(kind, "postgres-backup")
    assert [c["name"] for c in pod["containers"]] == ["pg-dump"] and "initContainers" not in pod
    assert not [r for r in kind.of_type(NETWORK_POLICY) if r.name == "backup-to-object-storage"]


def test_a_restore_check_restores_the_newest_dump_on_a_schedule(production: Declaration) -> None:
    job = production.one(CRONJOB, "postgres-restore-check").inputs["spec"]
    assert job["schedule"] == production.spec.postgres.backup.restoreCheckSchedule
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    (check,) = pod["containers"]
    assert check["command"] == ["sh", "-c", RESTORE_CHECK_SCRIPT]
    mounts = {m["name"]: m for m in check["volumeMounts"]}
    assert mounts["backups"]["readOnly"] is True and "scratch" in mounts
    # No NetworkPolicy lets it out: the scratch server is local to the pod (Unix socket only).
    selected = [
        p.name
        for p in production.of_type(NETWORK_POLICY)
        if p.inputs["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        == "living-codex-postgres-restore-check"
    ]
    assert selected == []


def test_dns_egress_reaches_only_kube_dns_and_node_local_dns(production: Declaration, variant: Variant) -> None:
    (rule,) = _policy(production, "allow-dns")["egress"]
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        },
        {"ipBlock": {"cidr": "169.254.20.10/32"}},
    ]
    assert {"namespaceSelector": {}} not in rule["to"]  # never every pod of every namespace
    without_cache = variant("production", append='  living-codex:nodeLocalDns: ""\n')
    (rule,) = _policy(without_cache, "allow-dns")["egress"]
    assert len(rule["to"]) == 1 and "ipBlock" not in rule["to"][0]


def test_budgets_let_unhealthy_pods_be_evicted(production: Declaration) -> None:
    budgets = production.of_type(PDB)
    assert {b.name for b in budgets} == {"app", "gateway"}
    for budget in budgets:
        assert budget.inputs["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", budget.name


def test_grafana_reads_its_password_from_a_file_and_resets_it_at_every_start(production: Declaration) -> None:
    pod = pod_spec(production, DEPLOYMENT, "grafana")
    (server,) = pod["containers"]
    (reset,) = pod["initContainers"]
    assert reset["command"] == ["sh", "-c", RESET_ADMIN_PASSWORD]
    for c in (server, reset):
        assert {"name": "GF_SECURITY_ADMIN_PASSWORD__FILE", "value": PASSWORD_FILE} in c["env"]
        assert not [e for e in c["env"] if e["name"] == "GF_SECURITY_ADMIN_PASSWORD"]
    assert {m["mountPath"] for m in reset["volumeMounts"]} >= {"/var/lib/grafana", "/run/secrets/grafana"}
    secret = next(v for v in pod["volumes"] if v["name"] == "admin-password")["secret"]
    assert secret["items"] == [{"key": "grafanaPassword", "path": "admin-password"}]


def _grafana_stub(directory: Path, exit_code: int) -> None:
    stub = directory / "grafana"
    stub.write_text(f'#!/bin/sh\necho "$@" > "{directory}/args"; cat > "{directory}/stdin"; exit {exit_code}\n')
    stub.chmod(0o755)


def _reset(tmp_path: Path, database: bool, exit_code: int = 0) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "var/lib/grafana"
    data.mkdir(parents=True, exist_ok=True)
    if database:
        (data / "grafana.db").write_text("")
    (tmp_path / "pw").write_text("rotated-password")
    _grafana_stub(tmp_path, exit_code)
    script = RESET_ADMIN_PASSWORD.replace("/var/lib/grafana", str(data))
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "GF_SECURITY_ADMIN_PASSWORD__FILE": str(tmp_path / "pw")}
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)


def test_the_reset_script_sets_the_secret_password_on_an_existing_database(tmp_path: Path) -> None:
    result = _reset(tmp_path, database=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text().split() == [
        "cli",
        "--homepath",
        "/usr/share/grafana",
        "admin",
        "reset-admin-password",
        "--password-from-stdin",
    ]
    assert (tmp_path / "stdin").read_text() == "rotated-password"


def test_the_reset_script_leaves_a_first_start_to_the_server_and_fails_loudly(tmp_path: Path) -> None:
    first = _reset(tmp_path / "first", database=False)
    assert first.returncode == 0 and not (tmp_path / "first" / "args").exists()
    failed = _reset(tmp_path / "failed", database=True, exit_code=1)
    assert failed.returncode == 1 and "could not set the Grafana admin password" in failed.stderr


def test_the_load_balancer_address_is_a_stack_output(production: Declaration) -> None:
    gateway = production.environment.gateway  # type: ignore[union-attr]
    assert gateway.address is not None
    # The mock stands in for the cloud's answer (a TEST-NET address); the real one comes from `pulumi up`.
    assert asyncio.get_event_loop().run_until_complete(gateway.address.future()) == "203.0.113.10"
    assert 'pulumi.export("loadBalancerAddress", gateway.address)' in (ROOT / "infra" / "program.py").read_text()


def test_staging_redis_runs_as_the_image_redis_user(staging: Declaration) -> None:
    assert container(staging, "redis")["user"] == "999:1000"


def test_every_checkov_skip_names_a_check_and_gives_its_reason(production: Declaration, tmp_path: Path) -> None:
    from codexops.preview import run_preview

    run_preview(production.spec, tmp_path)
    skips = []
    for path in sorted((tmp_path / "production").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        for key, value in ((document.get("metadata") or {}).get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                skips.append((path.name, str(value)))
    assert 0 < len(skips) <= 10
    for name, value in skips:
        check, _, reason = value.partition("=")
        assert re.fullmatch(r"CKV_K8S_\d+", check), (name, value)
        assert len(reason.split()) >= 5, (name, value)  # a reason, not a placeholder


def test_preview_names_metrics_server_and_cert_manager_metrics_as_prerequisites(production: Declaration) -> None:
    prerequisites = production.environment.prerequisites  # type: ignore[union-attr]
    assert any(p.startswith("metrics-server") and "HPA" in p for p in prerequisites)
    assert any("cert-manager/cert-manager port 9402" in p for p in prerequisites)
