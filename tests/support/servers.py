"""Real PostgreSQL and Redis servers for tests: Debian binaries, loopback, temporary directories."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from codexops.postgres_cluster import as_postgres, give_to_postgres, initdb, postgres_bin, psql


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Postgres:
    port: int
    data_dir: Path
    user: str = "codex"
    password: str = "codex-test-password"
    database: str = "livingcodex"
    options: tuple[str, ...] = ()  # more server options, e.g. infra.catalogue.postgres_options(spec)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def runbook_connection_string(self) -> str:
        return f"Host=127.0.0.1;Port={self.port};Database={self.database};Username={self.user};Password={self.password}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*as_postgres(), postgres_bin("pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = " ".join(
            [f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off", *self.options]
        )
        self._ctl("-o", options, "-l", str(self.data_dir / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        return psql(self.data_dir, self.port, sql, database)

    def recreate_database(self) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")


def start_postgres(options: tuple[str, ...] = ()) -> Postgres:
    data_dir = Path(tempfile.mkdtemp(prefix="codex-pg-"))  # 0700: the socket's folder, closed to others
    give_to_postgres(data_dir)
    initdb(data_dir, trust_local=True)  # the container's trusted socket, which infra/pg_scripts.py uses
    server = Postgres(free_port(), data_dir, options=options)
    server.start()
    server.psql(f"CREATE ROLE {server.user} LOGIN PASSWORD '{server.password}'")
    server.psql(f"CREATE DATABASE {server.database} OWNER {server.user}")
    return server


def remove_postgres(server: Postgres) -> None:
    try:
        server.stop()
    finally:
        shutil.rmtree(server.data_dir, ignore_errors=True)


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make setup`")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def start_redis() -> Redis:
    server = Redis(free_port())
    server.start()
    return server
