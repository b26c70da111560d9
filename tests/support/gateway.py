"""A real nginx, rendered from the one template, on a free port in front of given upstreams."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.render import render_nginx
from infra.spec import load_spec
from tests.support.servers import free_port, wait_for_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CODEXOPS = str(Path(sys.executable).with_name("codexops"))


@dataclass
class Nginx:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def start_nginx(directory: Path, upstreams: Sequence[str], *, replace: dict[str, str] | None = None) -> Nginx:
    """nginx for the staging spec on a free loopback port, plain HTTP as the local environment renders it
    (TLS is the Docker gateway's); `replace` edits the rendered text (tests only)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    spec = load_spec("staging").model_copy(update={"tls": False})
    conf = render_nginx(spec, upstreams, runtime_dir=str(directory), listen_host="127.0.0.1:", http_port=port)
    for old, new in (replace or {}).items():
        assert old in conf, old
        conf = conf.replace(old, new)
    (directory / "nginx.conf").write_text(conf)
    process = subprocess.Popen(
        [NGINX, "-c", str(directory / "nginx.conf"), "-p", str(directory), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return Nginx(port, directory, process)


@dataclass
class Replica:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=40)


@dataclass
class ReplicaSettings:
    database_url: str
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(36))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))


def start_replica(directory: Path, settings: ReplicaSettings, name: str, **extra: str) -> Replica:
    """`codexops serve` as a Staging replica against PostgreSQL, without Redis."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "CHAOS_", "REDIS_", "CONNECTION_"))}
    env.update(
        {
            "CODEX_ENVIRONMENT": "Staging",
            "CODEX_URLS": f"http://127.0.0.1:{port}",
            "CODEX_INSTANCE_ID": name,
            "CONNECTION_STRING": settings.database_url,
            "JWT_SECRET": settings.jwt_secret,
            "ADMIN_PASSWORD": settings.admin_password,
            "LOG_DIR": str(directory / "logs"),
            "SHUTDOWN_DRAIN_SECONDS": "0",
            **extra,
        }
    )
    process = subprocess.Popen(
        [CODEXOPS, "serve"], cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port, timeout=40)
    return Replica(port, process)
