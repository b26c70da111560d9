"""The backup CronJob's shell, run for real: a failing pg_dump fails the Job loudly; the real pg_dump against
a real PostgreSQL writes a dump that `pg_restore --list` reads and that the restore check restores into a
scratch server; the offsite copy fails when the copy or its check fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexops.postgres_cluster import as_postgres, give_to_postgres, postgres_bin
from infra.pg_scripts import OFFSITE_SCRIPT, RESTORE_CHECK_SCRIPT, backup_script
from tests.support.servers import Postgres

PG_BIN = str(Path(postgres_bin("pg_dump")).parent)


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run(script: str, env: dict[str, str], *, user: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(user or []), "env", *(f"{k}={v}" for k, v in env.items()), "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _env(backups: Path, path: str) -> dict[str, str]:
    return {"PATH": path, "BACKUP_DIR": str(backups), "HOME": str(backups)}


def test_a_failing_pg_dump_fails_the_backup_and_leaves_no_dump(tmp_path: Path) -> None:
    stubs, backups = tmp_path / "bin", tmp_path / "backups"
    stubs.mkdir()
    backups.mkdir()
    # Writes part of a file, then fails: what a dropped connection mid-dump does.
    _stub(stubs, "pg_dump", 'for a in "$@"; do case $a in --file=*) echo partial > "${a#--file=}";; esac; done; exit 1')
    result = _run(backup_script(3), _env(backups, f"{stubs}:/usr/bin:/bin"))
    assert result.returncode == 1, result.stdout
    assert "backup FAILED: pg_dump exited 1" in result.stderr
    assert "backup written" not in result.stdout
    assert list(backups.iterdir()) == []


def test_a_dump_that_does_not_read_back_fails_the_backup(tmp_path: Path) -> None:
    stubs, backups = tmp_path / "bin", tmp_path / "backups"
    stubs.mkdir()
    backups.mkdir()
    _stub(stubs, "pg_dump", 'for a in "$@"; do case $a in --file=*) echo garbage > "${a#--file=}";; esac; done')
    result = _run(backup_script(3), _env(backups, f"{stubs}:{PG_BIN}:/usr/bin:/bin"))  # the real pg_restore
    assert result.returncode == 1
    assert "the dump does not read back (pg_restore --list)" in result.stderr
    assert list(backups.iterdir()) == []


@pytest.fixture
def backups() -> Iterator[Path]:
    """Under a directory of its own (pytest's are root-only): the postgres account writes here when we are root."""
    root = Path(tempfile.mkdtemp(prefix="codex-backup-"))
    directory = root / "backups"
    directory.mkdir()
    give_to_postgres(root)
    give_to_postgres(directory)
    try:
        yield directory
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_real_pg_dump_writes_a_verified_dump_that_restores(fresh_postgres: Postgres, backups: Path) -> None:
    server = fresh_postgres
    server.psql(
        "CREATE TABLE nodes (id int primary key, name text); INSERT INTO nodes VALUES (1, 'root')", "livingcodex"
    )
    env = {
        **_env(backups, f"{PG_BIN}:/usr/bin:/bin"),
        "PGHOST": str(server.data_dir),  # the trusted local socket: no password in the test
        "PGPORT": str(server.port),
        "PGUSER": "postgres",
        "PGDATABASE": server.database,
    }
    for _ in range(4):  # keep=3: the oldest of four is rotated away
        result = _run(backup_script(3), env, user=as_postgres())
        assert result.returncode == 0, result.stderr
        assert "backup written and verified" in result.stdout
    dumps = sorted(backups.glob("livingcodex-*.dump"))
    assert 1 <= len(dumps) <= 3 and not list(backups.glob("*.partial"))
    listing = subprocess.run(
        [postgres_bin("pg_restore"), "--list", str(dumps[-1])], capture_output=True, text=True, check=True
    )
    assert "TABLE public nodes" in listing.stdout

    scratch = backups.parent / "scratch"
    scratch.mkdir()
    give_to_postgres(scratch)
    check = _run(RESTORE_CHECK_SCRIPT, {**env, "SCRATCH": str(scratch)}, user=as_postgres())
    assert check.returncode == 0, check.stderr
    assert "restore check passed" in check.stdout and "restored 1 tables" in check.stdout


def test_the_restore_check_fails_without_a_dump(tmp_path: Path) -> None:
    result = _run(RESTORE_CHECK_SCRIPT, {"PATH": f"{PG_BIN}:/usr/bin:/bin", "BACKUP_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "restore check FAILED: no dump found" in result.stderr


def _aws_stub(directory: Path, *, cp_exit: int, listed_size: str) -> None:
    """An `aws` that records its arguments, fails `s3 cp` with cp_exit and lists an object of listed_size bytes."""
    _stub(
        directory,
        "aws",
        f'echo "$@" >> "{directory}/calls"; case "$2" in cp) exit {cp_exit};; '
        f'ls) echo "2026-12-04 03:00:01 {listed_size} livingcodex.dump";; esac',
    )


@pytest.mark.parametrize(
    ("cp_exit", "listed_size", "message"),
    [
        (0, "SIZE", ""),
        (1, "SIZE", "offsite copy FAILED: aws s3 cp exited 1"),
        (0, "3", "is not 12 bytes"),
    ],
)
def test_the_offsite_copy(tmp_path: Path, cp_exit: int, listed_size: str, message: str) -> None:
    stubs, backups = tmp_path / "bin", tmp_path / "backups"
    stubs.mkdir()
    backups.mkdir()
    (backups / "livingcodex-20261204T030000Z.dump").write_bytes(b"PGDMP-12byte")
    _aws_stub(stubs, cp_exit=cp_exit, listed_size="12" if listed_size == "SIZE" else listed_size)
    env = {**_env(backups, f"{stubs}:/usr/bin:/bin"), "BACKUP_DESTINATION": "s3://codex-backups/postgres/"}
    result = _run(OFFSITE_SCRIPT, env)
    calls = (stubs / "calls").read_text()
    assert "s3 cp --only-show-errors" in calls
    assert "s3://codex-backups/postgres/livingcodex-20261204T030000Z.dump" in calls
    if message:
        assert result.returncode == 1 and message in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert "copied offsite" in result.stdout


def test_the_scripts_run_under_busybox_sh_syntax() -> None:
    """The images' sh is busybox ash; dash here is as strict: each script parses (sh -n)."""
    for script in (backup_script(7), OFFSITE_SCRIPT, RESTORE_CHECK_SCRIPT):
        assert subprocess.run(["sh", "-n", "-c", script], env={**os.environ}).returncode == 0
