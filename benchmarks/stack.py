"""The processes the benchmark adds beside the local environment: bare FastAPI replicas and its nginx."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.gateway import HOST, Ports, nginx_config
from codexops import localenv
from infra.spec import ROOT, EnvironmentSpec

BIN = Path(sys.executable).parent
RUNTIME = localenv.RUNTIME / "bench"


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s; see {RUNTIME}")


def _bare_replica(port: int, node_file: Path) -> subprocess.Popen[bytes]:
    command = [
        str(BIN / "uvicorn"),
        "benchmarks.bare_app:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    log = (RUNTIME / f"bare-{port}.log").open("wb")
    env = {**os.environ, "BENCH_NODE_FILE": str(node_file)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@contextmanager
def anchors_and_gateway(spec: EnvironmentSpec, ports: Ports, node_json: str) -> Iterator[None]:
    """Start the bare replicas and the benchmark's nginx; stop them afterwards, whatever happens."""
    RUNTIME.mkdir(parents=True, exist_ok=True)
    (RUNTIME / "nginx").mkdir(exist_ok=True)
    node_file = RUNTIME / "node.json"
    node_file.write_text(node_json)
    replicas = [f"{HOST}:{port}" for port in localenv.local_stack().ports.apps]
    conf = RUNTIME / "nginx" / "nginx.conf"
    conf.write_text(nginx_config(spec, replicas, RUNTIME / "nginx", ports, node_json))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = ["-c", str(conf), "-p", str(RUNTIME / "nginx")]
    subprocess.run([nginx, *prefix, "-t", "-q"], check=True, capture_output=True)
    children = [_bare_replica(port, node_file) for port in ports.bare_replicas]
    children.append(subprocess.Popen([nginx, *prefix, "-g", "daemon off;"], stderr=subprocess.DEVNULL))
    try:
        for port in (*ports.bare_replicas, ports.service, ports.static, ports.bare):
            wait_for_port(port)
        yield
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
