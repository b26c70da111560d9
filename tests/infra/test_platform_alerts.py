"""The Kubernetes stack's rules on backups, datastore pods and certificates, tested with the real
`promtool test rules`: each fires on the series that should page and stays quiet on healthy ones."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.alerts import render_alert_rules
from infra.platform_alerts import BACKUP, RESTORE_CHECK, platform_rules
from infra.spec import load_spec

SPEC = load_spec("production")
NS = 'namespace="living-codex"'
Series = list[dict[str, str]]


def _one(name: str, labels: str, values: str) -> Series:
    return [{"series": f"{name}{{{NS},{labels}}}", "values": values}]


def _cronjob(cronjob: str, last_run: int | None, last_ok: int | None, created: int = 0) -> Series:
    labels = f'cronjob="{cronjob}"'
    series = _one("kube_cronjob_created", labels, f"{created}x40")
    if last_run is not None:
        series += _one("kube_cronjob_status_last_schedule_time", labels, f"{last_run}x40")
    if last_ok is not None:
        series += _one("kube_cronjob_status_last_successful_time", labels, f"{last_ok}x40")
    return series


UP_PROMETHEUS = [{"series": 'up{job="prometheus",instance="p"}', "values": "1x40"}]
HOUR, DAY = 3600, 86400
NOW = 30 * HOUR  # evaluation time of the backup cases: 30 h after the epoch promtool starts at
BACKUP_LABELS = {"namespace": "living-codex", "cronjob": BACKUP}

# alert -> (interval, eval time, series that fire it, series that must not, labels the alert carries)
CASES: dict[str, list[tuple[str, str, Series, Series, dict[str, str]]]] = {
    "CodexKubeStateMetricsDown": [
        ("1m", "30m", UP_PROMETHEUS, [{"series": 'up{job="kube-state-metrics",instance="k"}', "values": "1x40"}], {}),
    ],
    "CodexBackupJobFailed": [
        # The 27 h run never succeeded (the last success is older): failed.
        (
            "1h",
            "30h",
            _cronjob(BACKUP, NOW - 3 * HOUR, NOW - 27 * HOUR),
            _cronjob(BACKUP, NOW - 3 * HOUR, NOW - 2 * HOUR),
            BACKUP_LABELS,
        ),
        # A restore check that has never succeeded once.
        (
            "1h",
            "30h",
            _cronjob(RESTORE_CHECK, NOW - 2 * HOUR, None),
            _cronjob(RESTORE_CHECK, NOW - 2 * HOUR, NOW - HOUR),
            {"namespace": "living-codex", "cronjob": RESTORE_CHECK},
        ),
    ],
    "CodexBackupMissing": [
        # The last success is 27 h old (over maxAgeHours 26), while a newer run is also failing.
        (
            "1h",
            "30h",
            _cronjob(BACKUP, NOW - 2 * HOUR, NOW - 27 * HOUR),
            _cronjob(BACKUP, NOW - 2 * HOUR, NOW - 25 * HOUR),
            BACKUP_LABELS,
        ),
        # The CronJob exists for 30 h and never succeeded; one created 2 h ago is not late yet.
        (
            "1h",
            "30h",
            _cronjob(BACKUP, None, None, created=0),
            _cronjob(BACKUP, None, None, created=NOW - 2 * HOUR),
            BACKUP_LABELS,
        ),
    ],
    "CodexDatastoreNotReady": [
        (
            "1m",
            "20m",
            _one("kube_pod_status_ready", 'pod="living-codex-postgres-0",condition="true"', "0x40"),
            _one("kube_pod_status_ready", 'pod="living-codex-postgres-0",condition="true"', "1x40")
            + _one("kube_pod_status_ready", 'pod="living-codex-app-5d9c-x2",condition="true"', "0x40"),
            {"namespace": "living-codex", "pod": "living-codex-postgres-0"},
        ),
    ],
    "CodexDatastoreRestarting": [
        (
            "1m",
            "30m",
            _one("kube_pod_container_status_restarts_total", 'pod="living-codex-redis-0",container="redis"', "0+1x40"),
            _one("kube_pod_container_status_restarts_total", 'pod="living-codex-redis-0",container="redis"', "4x40"),
            {"namespace": "living-codex", "pod": "living-codex-redis-0"},
        ),
    ],
    "CodexCertificateExpiringSoon": [
        (
            "1m",
            "20m",
            _one(
                "certmanager_certificate_expiration_timestamp_seconds",
                'name="living-codex-gateway-tls"',
                f"{10 * DAY}x40",
            ),
            _one(
                "certmanager_certificate_expiration_timestamp_seconds",
                'name="living-codex-gateway-tls"',
                f"{20 * DAY}x40",
            ),
            {"namespace": "living-codex", "name": "living-codex-gateway-tls"},
        ),
    ],
    "CodexCertificateExpiryCritical": [
        (
            "1m",
            "20m",
            _one(
                "certmanager_certificate_expiration_timestamp_seconds", 'name="living-codex-redis-tls"', f"{2 * DAY}x40"
            ),
            _one(
                "certmanager_certificate_expiration_timestamp_seconds", 'name="living-codex-redis-tls"', f"{5 * DAY}x40"
            ),
            {"namespace": "living-codex", "name": "living-codex-redis-tls"},
        ),
    ],
    "CodexCertificateNotReady": [
        (
            "1m",
            "20m",
            _one("certmanager_certificate_ready_status", 'name="living-codex-gateway-tls",condition="True"', "0x40"),
            _one("certmanager_certificate_ready_status", 'name="living-codex-gateway-tls",condition="True"', "1x40"),
            {"namespace": "living-codex", "name": "living-codex-gateway-tls"},
        ),
    ],
    "CodexCertManagerMetricsMissing": [
        ("1m", "30m", UP_PROMETHEUS, [{"series": 'up{job="cert-manager",instance="c"}', "values": "1x40"}], {}),
    ],
}


def test_every_platform_rule_has_a_case() -> None:
    assert {rule.name for rule in platform_rules(SPEC)} == set(CASES)


def _test(interval: str, at: str, alert: str, series: Series, expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": interval,
        "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}],
    }


def test_promtool_fires_each_platform_rule_and_stays_quiet_when_healthy(tmp_path: Path) -> None:
    rendered = render_alert_rules(SPEC, cluster=True)
    (tmp_path / "alert-rules.yml").write_text(rendered)
    check = subprocess.run(
        ["promtool", "check", "rules", "alert-rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # promtool evaluates every rule of the file at every step of every case: the platform group alone
    # (as rendered) keeps the run short.
    groups = [g for g in yaml.safe_load(rendered)["groups"] if g["name"] == "living-codex-platform"]
    assert len(groups) == 1
    (tmp_path / "platform-rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    rules = {rule.name: rule.as_dict() for rule in platform_rules(SPEC)}
    tests: dict[str, list[dict[str, Any]]] = {}
    for alert, cases in CASES.items():
        for interval, at, firing, quiet, labels in cases:
            annotations = rules[alert]["annotations"]
            summary = annotations["summary"]
            for key, value in labels.items():  # promtool compares the expanded templates
                summary = summary.replace(f"{{{{ $labels.{key} }}}}", value)
            expected = {
                "exp_labels": {**rules[alert]["labels"], **labels},
                "exp_annotations": {**annotations, "summary": summary},
            }
            tests.setdefault(interval, []).append(_test(interval, at, alert, firing, [expected]))
            tests.setdefault(interval, []).append(_test(interval, at, alert, quiet, []))
    # promtool steps every rule from 0 to eval_time at evaluation_interval: the 30 h backup cases step
    # hourly, as their series are sampled (their rules have no `for:`), not 1,800 times each.
    files = []
    for interval, group in tests.items():
        document = {"rule_files": ["platform-rules.yml"], "evaluation_interval": interval, "tests": group}
        files.append(f"tests-{interval}.yml")
        (tmp_path / files[-1]).write_text(yaml.safe_dump(document, sort_keys=False))
    assert files == ["tests-1m.yml", "tests-1h.yml"]
    result = subprocess.run(["promtool", "test", "rules", *files], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("SUCCESS") == len(files)


def test_docker_stacks_get_no_platform_rules() -> None:
    staging = load_spec("staging")
    assert platform_rules(staging) == []
    assert "living-codex-platform" not in render_alert_rules(staging, cluster=False)


def test_the_production_prometheus_loads_and_scrapes_what_the_rules_read() -> None:
    from infra.mock_runtime import declare, with_release

    declaration = declare(with_release(SPEC))
    data = declaration.one("kubernetes:core/v1:ConfigMap", "prometheus-config").inputs["data"]
    assert "CodexBackupMissing" in data["alert-rules.yml"] and "CodexCertificateExpiringSoon" in data["alert-rules.yml"]
    jobs = {j["job_name"]: j for j in yaml.safe_load(data["prometheus.yml"])["scrape_configs"]}
    assert jobs["kube-state-metrics"]["static_configs"][0]["targets"] == ["living-codex-kube-state-metrics:8080"]
    assert jobs["cert-manager"]["static_configs"][0]["targets"] == ["cert-manager.cert-manager.svc:9402"]
    ksm = declaration.one("kubernetes:apps/v1:Deployment", "kube-state-metrics").inputs["spec"]["template"]["spec"]
    assert "--namespaces=living-codex" in ksm["containers"][0]["args"]
    role = declaration.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "kube-state-metrics").inputs
    assert {g for rule in role["rules"] for g in rule["resources"]} == {"pods", "cronjobs", "jobs", "statefulsets"}
