"""A PostgreSQL cluster of Debian's binaries, run as the 'postgres' account when we are root
(initdb refuses root). Used by the local environment and the test fixtures.

Who may connect (pg_hba.conf, unless initdb(trust_local=True)): over the unix socket, the cluster's
owner (the OS account that runs the server: 'postgres' as root, else the developer) as the superuser
'postgres' by `peer` (the kernel names the connecting account, so no password is needed nor kept
anywhere: psql, pg_dump and pg_restore run as that account), everyone else with a password
(scram-sha-256); over TCP, everyone with a password. The superuser has none, so it cannot log in over
TCP at all."""

from __future__ import annotations

import glob
import os
import pwd
import subprocess
from pathlib import Path

SUPERUSER_MAP = "owner"  # pg_ident.conf: the cluster owner's OS account -> the role postgres
HBA = f"""# Written by codexops/postgres_cluster.py; rewritten at every `codexops up`.
# TYPE  DATABASE     USER      ADDRESS       METHOD
local   all          postgres                peer map={SUPERUSER_MAP}
local   replication  postgres                peer map={SUPERUSER_MAP}
local   all          all                     scram-sha-256
host    all          all       127.0.0.1/32  scram-sha-256
host    all          all       ::1/128       scram-sha-256
"""


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


def cluster_owner() -> str:
    """The OS account the server runs as (and that owns the data directory)."""
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def restrict_access(data_dir: Path) -> None:
    """pg_hba.conf and pg_ident.conf as the module's docstring says, readable by the owner only. Also
    for a cluster an older version initialised with `trust`: the server reads them at start or SIGHUP."""
    files = {"pg_hba.conf": HBA, "pg_ident.conf": f"{SUPERUSER_MAP}  {cluster_owner()}  postgres\n"}
    for name, text in files.items():
        path = data_dir / name
        path.write_text(text)
        path.chmod(0o600)
        give_to_postgres(path)


def initdb(data_dir: Path, *, trust_local: bool = False) -> None:
    """A new cluster whose access is restricted (restrict_access) before it first starts. trust_local:
    every local account may connect over the socket as any role, as in the postgres image's container
    (whose scripts, infra/pg_scripts.py, rely on it); only where the socket folder is closed to others."""
    subprocess.run(
        [
            *as_postgres(),
            postgres_bin("initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            f"--auth-local={'trust' if trust_local else 'peer'}",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    if not trust_local:
        restrict_access(data_dir)


def psql(socket_dir: Path, port: int, sql: str, database: str = "postgres") -> str:
    """`sql` as the superuser over the socket. On stdin, not the command line every local user can read
    (/proc): a statement may carry a password (ALTER ROLE ... PASSWORD)."""
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
            "-X",
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
        ],
        input=sql,
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()
