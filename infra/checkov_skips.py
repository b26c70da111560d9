"""The checkov findings this program keeps on purpose, each with its reason, written on the workload as
`checkov.io/skipN: CKV_K8S_xx=reason` annotations (how checkov reads a skip in a Kubernetes manifest).
tests/infra/test_checkov_skips.py holds every skip to a reason."""

from __future__ import annotations

LOW_UID = (
    "the postgres image's own uid 70: initdb and PostgreSQL need a passwd entry for their uid (the image "
    "has one for 70 only) and the data directory owned by it"
)
SECRET_ENV = "{what} reads its password from the environment only; the value comes from a Secret (secretKeyRef)"
TOKEN = "{what} reads the Kubernetes API (namespaced Role: list and watch only), so it needs its token"

SKIPS: dict[str, dict[str, str]] = {
    "postgres": {
        "CKV_K8S_40": LOW_UID,
        "CKV_K8S_35": SECRET_ENV.format(what="the postgres image's POSTGRES_PASSWORD (also the postStart sync)"),
    },
    "postgres-backup": {
        "CKV_K8S_40": LOW_UID,
        "CKV_K8S_35": SECRET_ENV.format(what="pg_dump (PGPASSWORD) and the AWS CLI (AWS_SECRET_ACCESS_KEY)"),
    },
    "postgres-restore-check": {"CKV_K8S_40": LOW_UID},
    "redis": {"CKV_K8S_35": SECRET_ENV.format(what="redis-server's --requirepass and the redis-cli probe")},
    "app": {"CKV_K8S_35": SECRET_ENV.format(what="the app's settings (pydantic-settings)")},
    "prometheus": {"CKV_K8S_38": TOKEN.format(what="Prometheus discovers the app's pods and")},
    "kube-state-metrics": {"CKV_K8S_38": TOKEN.format(what="kube-state-metrics")},
}


def skip_annotations(component: str) -> dict[str, str]:
    return {
        f"checkov.io/skip{i}": f"{check}={reason}"
        for i, (check, reason) in enumerate(SKIPS.get(component, {}).items(), 1)
    }
