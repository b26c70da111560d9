"""Backups with a restore that works, data that outlives its resources, a rotated password that
reaches the database, Redis bounded under its limit. The shell is run against a real PostgreSQL and Redis."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from infra.components.postgres import Postgres as PostgresComponent
from infra.mock_runtime import Declaration
from infra.pg_scripts import PASSWORD_SYNC, RESTORE_SCRIPT, backup_script, docker_entrypoint
from tests.infra.conftest import container, pod_spec
from tests.support.servers import Postgres, free_port

STATEFULSET = "kubernetes:apps/v1:StatefulSet"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"


def _claims(declaration: Declaration) -> dict[str, bool]:
    return {r.inputs["metadata"]["name"]: r.protect and r.retain_on_delete for r in declaration.of_type(PVC)}


def test_a_backup_cronjob_dumps_to_its_own_claim(production: Declaration) -> None:
    backup = production.spec.postgres.backup
    job = production.one("kubernetes:batch/v1:CronJob", "postgres-backup").inputs["spec"]
    assert job["schedule"] == backup.schedule and job["concurrencyPolicy"] == "Forbid"
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    dump = pod["initContainers"][0]  # the offsite copy (a container) runs after a verified dump only
    assert dump["command"] == ["sh", "-c", backup_script(backup.keep)]
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert _claims(production)[claim]  # protected and retained
    postgres = pod_spec(production, STATEFULSET, "postgres")
    assert {"name": "backups", "mountPath": "/backups", "readOnly": True} in postgres["containers"][0]["volumeMounts"]
    assert postgres["volumes"][-1]["persistentVolumeClaim"]["claimName"] == claim


def _env(server: Postgres, **extra: str) -> dict[str, str]:
    return {**os.environ, "PGHOST": str(server.data_dir), "PGPORT": str(server.port), **extra}


def _sh(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)


def _query(server: Postgres, password: str, sql: str) -> subprocess.CompletedProcess[str]:
    dsn = f"host=127.0.0.1 port={server.port} user=codex dbname=livingcodex"
    env = {**os.environ, "PGPASSWORD": password}
    return subprocess.run(["psql", dsn, "-XAtc", sql], env=env, capture_output=True, text=True, timeout=30)


def test_backup_and_restore_against_a_real_postgres(fresh_postgres: Postgres, tmp_path: Path) -> None:
    server = fresh_postgres
    assert _query(server, server.password, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')").returncode == 0
    env = _env(server, PGHOST="127.0.0.1", PGUSER="codex", PGDATABASE="livingcodex", PGPASSWORD=server.password)
    env["BACKUP_DIR"] = str(tmp_path)
    for _ in range(2):
        result = _sh(backup_script(keep=1), env)
        assert result.returncode == 0, result.stderr
        time.sleep(1.1)  # dumps are named by the second
    assert len(list(tmp_path.glob("livingcodex-*.dump"))) == 1  # the older one was pruned
    assert _query(server, server.password, "DROP TABLE kept").returncode == 0
    restored = _sh(RESTORE_SCRIPT, _env(server, BACKUP_DIR=str(tmp_path)))
    assert restored.returncode == 0, restored.stderr
    assert _query(server, server.password, "SELECT v FROM kept").stdout.strip() == "x"


def test_a_rotated_password_is_set_on_the_role(postgres: Postgres) -> None:
    rotated = "rotated p@ss:w/rd'%"
    try:
        result = _sh(PASSWORD_SYNC, _env(postgres, POSTGRES_PASSWORD=rotated))
        assert result.returncode == 0, result.stderr
        assert _query(postgres, rotated, "SELECT 1").stdout.strip() == "1"
        assert _query(postgres, postgres.password, "SELECT 1").returncode != 0
    finally:
        _sh(PASSWORD_SYNC, _env(postgres, POSTGRES_PASSWORD=postgres.password))


def test_both_stacks_sync_the_password_at_every_start(staging: Declaration, production: Declaration) -> None:
    postgres = pod_spec(production, STATEFULSET, "postgres")["containers"][0]
    assert postgres["lifecycle"]["postStart"]["exec"]["command"] == ["sh", "-c", PASSWORD_SYNC]
    assert container(staging, "postgres")["entrypoints"] == ["sh", "-c", docker_entrypoint()]
    component = production.environment.postgres  # type: ignore[union-attr]
    assert isinstance(component, PostgresComponent)
    assert shlex.quote(RESTORE_SCRIPT) in component.restore_command


def test_data_outlives_its_resources(staging: Declaration, production: Declaration) -> None:
    namespace = production.one("kubernetes:core/v1:Namespace", "namespace")
    assert namespace.protect and namespace.retain_on_delete  # a renamed namespace keeps the old claims
    assert all(_claims(production).values()) and len(_claims(production)) == 4
    for statefulset in production.of_type(STATEFULSET):
        policy = statefulset.inputs["spec"]["persistentVolumeClaimRetentionPolicy"]
        assert policy == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    volumes = staging.of_type("docker:index/volume:Volume")
    assert {v.name for v in volumes} >= {"postgres-data", "redis-data"}
    assert all(v.retain_on_delete and not v.protect for v in volumes)


def test_redis_is_bounded_under_its_limit(staging: Declaration, production: Declaration) -> None:
    expected = "--maxmemory 201326592 --maxmemory-policy noeviction"  # 75% of 256Mi
    assert expected in container(staging, "redis")["command"][-1]
    redis = pod_spec(production, STATEFULSET, "redis")["containers"][0]
    assert expected in redis["command"][-1]
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", *expected.split()])
    try:
        for _ in range(50):
            answer = subprocess.run(
                ["redis-cli", "-p", str(port), "config", "get", "maxmemory*"], capture_output=True, text=True
            )
            if answer.returncode == 0 and answer.stdout:
                break
            time.sleep(0.1)
        assert "201326592" in answer.stdout and "noeviction" in answer.stdout
    finally:
        server.terminate()
        server.wait(10)
