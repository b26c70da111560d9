"""PostgreSQL: a container with a volume (staging), a StatefulSet with a volume claim and a pg_dump
CronJob (production), or an external managed server (by config). The role's password follows the
stack's Secret at every start (infra/pg_scripts.py)."""

from __future__ import annotations

import shlex
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra import catalogue, images
from infra.catalogue import POSTGRES_PORT as PORT
from infra.components.container import container, data_volume
from infra.components.target import (
    PREFIX,
    Target,
    labels,
    pod_security,
    pvc,
    resources,
    restricted_container,
    workload_metadata,
)
from infra.components.workload import container as kubernetes_container
from infra.components.workload import service, workload
from infra.pg_scripts import (
    DATABASE,
    OFFSITE_SCRIPT,
    PASSWORD_SYNC,
    RESTORE_CHECK_SCRIPT,
    RESTORE_SCRIPT,
    ROLE,
    backup_script,
    docker_entrypoint,
)
from infra.spec import Offsite

POSTGRES_UID = 70  # the alpine image's postgres user
BACKUPS = "/backups"
BACKUPS_CLAIM = f"{PREFIX}-postgres-backups"  # what pvc(..., "postgres-backups") names the claim


def _server_args(target: Target) -> dict[str, list[str]]:
    """The image's command with the spec's options (`args` replaces the image's CMD, `postgres`)."""
    options = catalogue.postgres_options(target.spec)
    return {"args": ["postgres", *options]} if options else {}


class Postgres(pulumi.ComponentResource):
    host: str
    container: docker.Container | None = None
    volume: docker.Volume | None = None
    service: k8s.core.v1.Service | None = None
    statefulset: k8s.apps.v1.StatefulSet | None = None
    backups: k8s.core.v1.PersistentVolumeClaim | None = None
    backup_job: k8s.batch.v1.CronJob | None = None
    restore_check_job: k8s.batch.v1.CronJob | None = None
    restore_command: str = ""

    def __init__(
        self,
        name: str,
        target: Target,
        password: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("living-codex:index:Postgres", name, None, opts)
        store = target.spec.postgres
        self.host = store.externalHost or target.host("postgres")
        self.port = PORT
        if store.mode == "external":
            pass  # a managed server: only its address and the password are used
        elif target.kubernetes:
            self._kubernetes(target)
        else:
            self._docker(target, password)
        self.register_outputs({"host": self.host})

    def _docker(self, target: Target, password: pulumi.Output[str]) -> None:
        entry = catalogue.entry(target.spec, "postgres")
        self.volume = data_volume(self, target, entry)
        self.container = container(
            self,
            target,
            entry,
            volume=self.volume,
            health=["CMD-SHELL", f"pg_isready -U {ROLE} -d {DATABASE}"],
            envs=[
                pulumi.Output.concat("POSTGRES_PASSWORD=", password),
                f"POSTGRES_USER={ROLE}",
                f"POSTGRES_DB={DATABASE}",
            ],
            entrypoints=["sh", "-c", docker_entrypoint(catalogue.postgres_options(target.spec))],
            wait=True,  # `pulumi up` goes on to the app only once PostgreSQL is healthy
            wait_timeout=120,
        )

    def _password_env(self, target: Target) -> dict[str, Any]:
        return {
            "name": "POSTGRES_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": target.secret_name, "key": "postgresPassword"}},
        }

    def _kubernetes(self, target: Target) -> None:
        store, entry = target.spec.postgres, catalogue.entry(target.spec, "postgres")
        self.service = service(self, target, entry)
        self.backups = pvc(self, target, "postgres-backup", store.backup.storage, "postgres-backups")
        probe = {
            "exec": {"command": ["pg_isready", "-U", ROLE, "-d", DATABASE]},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
        }
        server = kubernetes_container(
            target,
            entry,
            env=[
                {"name": "POSTGRES_USER", "value": ROLE},
                {"name": "POSTGRES_DB", "value": DATABASE},
                {"name": "PGDATA", "value": f"{entry.data_path}/pgdata"},
                self._password_env(target),
            ],
            lifecycle={"postStart": {"exec": {"command": ["sh", "-c", PASSWORD_SYNC]}}},
            **_server_args(target),
            readinessProbe=probe,
            livenessProbe={**probe, "initialDelaySeconds": 30},
            volumeMounts=[
                {"name": "data", "mountPath": entry.data_path},
                {"name": "run", "mountPath": "/var/run/postgresql"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "backups", "mountPath": BACKUPS, "readOnly": True},
            ],
        )
        self.statefulset = workload(
            self,
            target,
            entry,
            [server],
            # A rotated password restarts the pod, whose postStart sets it on the role.
            rollout=target.secret_checksum("postgresPassword"),
            volumes=[
                {"name": "run", "emptyDir": {}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "backups", "persistentVolumeClaim": {"claimName": BACKUPS_CLAIM}},
            ],
        )
        self._backup_job(target, self.backups)
        self.restore_command = (
            f"kubectl -n {target.namespace} exec {self.host}-0 -c postgres -- sh -c {shlex.quote(RESTORE_SCRIPT)}"
        )

    def _job_pod(self, containers: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "restartPolicy": "OnFailure",
            "securityContext": pod_security(POSTGRES_UID),
            "automountServiceAccountToken": False,
            # The backups claim is ReadWriteOnce and also mounted by PostgreSQL: run on its node.
            "affinity": {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": labels("postgres")}, "topologyKey": "kubernetes.io/hostname"}
                    ]
                }
            },
            "containers": containers,
            "volumes": [{"name": "backups", "persistentVolumeClaim": {"claimName": BACKUPS_CLAIM}}, *volumes],
        }

    def _cronjob(
        self, target: Target, component: str, schedule: str, pod: dict[str, Any], claim: pulumi.Resource
    ) -> k8s.batch.v1.CronJob:
        return k8s.batch.v1.CronJob(
            component,
            metadata=workload_metadata(target, component),
            spec={
                "schedule": schedule,
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 2,
                        "template": {"metadata": {"labels": labels(component)}, "spec": pod},
                    }
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[claim]),
        )

    def _backup_job(self, target: Target, claim: k8s.core.v1.PersistentVolumeClaim) -> None:
        """pg_dump, verified, into the claim; with `offsite`, then copied to object storage (the dump runs as an
        init container, so a failed dump never reaches the copy and the Job fails)."""
        backup = target.spec.postgres.backup
        env = [
            {"name": "PGHOST", "value": self.host},
            {"name": "PGUSER", "value": ROLE},
            {"name": "PGDATABASE", "value": DATABASE},
            {**self._password_env(target), "name": "PGPASSWORD"},
            {"name": "BACKUP_DIR", "value": BACKUPS},
        ]
        dump = {
            "name": "pg-dump",
            "image": target.pinned(images.POSTGRES),
            "command": ["sh", "-c", backup_script(backup.keep)],
            "env": env,
            "resources": resources("50m", "64Mi", "500m", "256Mi"),
            "securityContext": restricted_container(),
            "volumeMounts": [{"name": "backups", "mountPath": BACKUPS}],
        }
        if backup.offsite is None:
            pod = self._job_pod([dump], [])
        else:
            pod = self._job_pod([self._offsite_container(target, backup.offsite)], [{"name": "tmp", "emptyDir": {}}])
            pod["initContainers"] = [dump]
            target.prerequisites.append(
                f"Secret {target.namespace}/{backup.offsite.secretName} (keys AWS_ACCESS_KEY_ID, "
                f"AWS_SECRET_ACCESS_KEY): write access to {backup.offsite.url}"
            )
        self.backup_job = self._cronjob(target, "postgres-backup", backup.schedule, pod, claim)
        self._restore_check_job(target, claim)

    def _offsite_container(self, target: Target, offsite: Offsite) -> dict[str, Any]:
        def key(name: str) -> dict[str, Any]:
            return {"name": name, "valueFrom": {"secretKeyRef": {"name": offsite.secretName, "key": name}}}

        env = [
            {"name": "BACKUP_DIR", "value": BACKUPS},
            {"name": "BACKUP_DESTINATION", "value": offsite.url},
            {"name": "AWS_DEFAULT_REGION", "value": offsite.region},
            {"name": "HOME", "value": "/tmp"},  # the CLI's cache, under a read-only root
            key("AWS_ACCESS_KEY_ID"),
            key("AWS_SECRET_ACCESS_KEY"),
        ]
        if offsite.endpoint:
            env.append({"name": "AWS_ENDPOINT_URL", "value": offsite.endpoint})
        return {
            "name": "offsite-copy",
            "image": target.pinned(images.AWS_CLI),
            "command": ["sh", "-c", OFFSITE_SCRIPT],  # the image's entrypoint is `aws`
            "env": env,
            "resources": resources("50m", "64Mi", "500m", "256Mi"),
            "securityContext": restricted_container(),
            "volumeMounts": [
                {"name": "backups", "mountPath": BACKUPS, "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }

    def _restore_check_job(self, target: Target, claim: k8s.core.v1.PersistentVolumeClaim) -> None:
        """Restores the newest dump into a scratch server inside its own pod and checks it has tables."""
        check = {
            "name": "restore-check",
            "image": target.pinned(images.POSTGRES),
            "command": ["sh", "-c", RESTORE_CHECK_SCRIPT],
            "env": [{"name": "BACKUP_DIR", "value": BACKUPS}, {"name": "SCRATCH", "value": "/scratch"}],
            "resources": resources("100m", "128Mi", "1", "512Mi"),
            "securityContext": restricted_container(),
            "volumeMounts": [
                {"name": "backups", "mountPath": BACKUPS, "readOnly": True},
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "run", "mountPath": "/var/run/postgresql"},
            ],
        }
        volumes = [{"name": "scratch", "emptyDir": {}}, {"name": "run", "emptyDir": {}}]
        schedule = target.spec.postgres.backup.restoreCheckSchedule
        pod = self._job_pod([check], volumes)
        self.restore_check_job = self._cronjob(target, "postgres-restore-check", schedule, pod, claim)
