"""A PostgreSQL cluster of Debian's binaries, run as the 'postgres' account when we are root
(initdb refuses root). Used by the local environment and the test fixtures."""

from __future__ import annotations

import glob
import os
import pwd
import subprocess
from pathlib import Path


class PostgresMissing(RuntimeError):
    pass


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise PostgresMissing("PostgreSQL is not installed: run `make setup`")
    return found[-1]


def as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def give_to_postgres(directory: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(directory, entry.pw_uid, entry.pw_gid)


def initdb(data_dir: Path) -> None:
    """A new cluster: local socket connections trusted, TCP ones by password (scram-sha-256)."""
    subprocess.run(
        [
            *as_postgres(),
            postgres_bin("initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def psql(socket_dir: Path, port: int, sql: str, database: str = "postgres") -> str:
    result = subprocess.run(
        [
            *as_postgres(),
            postgres_bin("psql"),
            "-h",
            str(socket_dir),
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            database,
            "-tAc",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()
