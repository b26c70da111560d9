"""Alert rules on what runs beside the app in a Kubernetes stack: backups and their restore check, datastore
pods, certificates. They read kube-state-metrics (deployed by the Observability component, watching the
stack's namespace) and cert-manager's metrics (scraped from its Service); each source has a rule that fires
when it is missing, so silence never means "all is well"."""

from __future__ import annotations

from infra.alerts import AlertRule
from infra.spec import EnvironmentSpec

BACKUP, RESTORE_CHECK = "living-codex-postgres-backup", "living-codex-postgres-restore-check"
RUNBOOK = "runbooks/PRODUCTION_RUNBOOK.md#backups-certificates-and-alert-receivers"
DAY = 86400


def _backup_rules(ns: str, max_age_hours: int) -> list[AlertRule]:
    jobs = f'namespace="{ns}",cronjob=~"{BACKUP}|{RESTORE_CHECK}"'
    last_run = f"kube_cronjob_status_last_schedule_time{{{jobs}}}"
    last_ok = f"kube_cronjob_status_last_successful_time{{{jobs}}}"
    backup = f'namespace="{ns}",cronjob="{BACKUP}"'
    max_age = max_age_hours * 3600
    return [
        AlertRule(
            "CodexBackupJobFailed",
            # The newest run started over an hour ago and has not succeeded since (failed, or stuck).
            f"(time() - {last_run} > 3600) and on (namespace, cronjob) "
            f"(({last_run} - on (namespace, cronjob) {last_ok} > 0) or ({last_run} unless on (namespace, cronjob) "
            f"{last_ok}))",
            "critical",
            "The newest run of {{ $labels.cronjob }} has not succeeded an hour after it started",
            "0m",
            RUNBOOK,
        ),
        AlertRule(
            "CodexBackupMissing",
            f"(time() - kube_cronjob_status_last_successful_time{{{backup}}} > {max_age}) or "
            f"((time() - kube_cronjob_created{{{backup}}} > {max_age}) unless on (namespace, cronjob) "
            f"kube_cronjob_status_last_successful_time{{{backup}}})",
            "critical",
            f"No PostgreSQL backup has succeeded for {max_age_hours} hours",
            "0m",
            RUNBOOK,
        ),
    ]


def _datastore_rules(ns: str, pods: str) -> list[AlertRule]:
    selector = f'namespace="{ns}",pod=~"{pods}"'
    return [
        AlertRule(
            "CodexDatastoreNotReady",
            f'max by (namespace, pod) (kube_pod_status_ready{{{selector},condition="true"}}) == 0',
            "critical",
            "Datastore pod {{ $labels.pod }} is not ready",
            "5m",
            RUNBOOK,
        ),
        AlertRule(
            "CodexDatastoreRestarting",
            f"sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total{{{selector}}}[30m])) >= 3",
            "warning",
            "Datastore pod {{ $labels.pod }} restarted 3 times or more in 30 minutes",
            "0m",
            RUNBOOK,
        ),
    ]


def _certificate_rules(spec: EnvironmentSpec) -> list[AlertRule]:
    days = spec.observability.certificates
    metric = f'certmanager_certificate_expiration_timestamp_seconds{{namespace="{spec.namespace}"}}'
    expiry = f"min by (namespace, name) ({metric})"
    return [
        AlertRule(
            "CodexCertificateExpiringSoon",
            f"{expiry} - time() < {days.warningDays * DAY}",
            "warning",
            f"Certificate {{{{ $labels.name }}}} expires within {days.warningDays} days: renewal is failing",
            "10m",
            RUNBOOK,
        ),
        AlertRule(
            "CodexCertificateExpiryCritical",
            f"{expiry} - time() < {days.criticalDays * DAY}",
            "critical",
            f"Certificate {{{{ $labels.name }}}} expires within {days.criticalDays} days",
            "10m",
            RUNBOOK,
        ),
        AlertRule(
            "CodexCertificateNotReady",
            f'max by (namespace, name) (certmanager_certificate_ready_status{{namespace="{spec.namespace}",'
            'condition="True"}) == 0',
            "warning",
            "Certificate {{ $labels.name }} is not Ready in cert-manager",
            "15m",
            RUNBOOK,
        ),
        AlertRule(
            "CodexCertManagerMetricsMissing",
            'absent(up{job="cert-manager"} == 1)',
            "warning",
            "cert-manager's metrics are not scraped: certificate expiry is not watched",
            "15m",
            RUNBOOK,
        ),
    ]


def platform_rules(spec: EnvironmentSpec) -> list[AlertRule]:
    """The rules for a Kubernetes stack; none for Docker and local stacks (no kube-state-metrics there)."""
    if spec.platform != "kubernetes":
        return []
    ns = spec.namespace
    rules = [
        AlertRule(
            "CodexKubeStateMetricsDown",
            'absent(up{job="kube-state-metrics"} == 1)',
            "critical",
            "kube-state-metrics is not scraped: backup and datastore alerts cannot fire",
            "10m",
            RUNBOOK,
        )
    ]
    if spec.postgres.mode == "statefulset":
        rules += _backup_rules(ns, spec.postgres.backup.maxAgeHours)
    stores = [name for name in ("postgres", "redis") if getattr(spec, name).mode == "statefulset"]
    if stores:
        rules += _datastore_rules(ns, f"living-codex-({'|'.join(stores)})-[0-9]+")
    if spec.tls or spec.redis.tls:
        rules += _certificate_rules(spec)
    return rules
