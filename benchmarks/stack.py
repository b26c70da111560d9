"""The processes the benchmark adds beside the local environment: anchor replicas, extra service
replicas for the scale curve, and its nginx (re-rendered and reloaded when the replica lists change)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.gateway import HOST, Ports, nginx_config
from codexops import localenv
from infra.spec import ROOT, EnvironmentSpec

BIN = Path(sys.executable).parent
RUNTIME = localenv.RUNTIME / "bench"
POOL_SIZE = 20  # the service's pool with ENABLE_DATABASE_OPTIMIZATION: 20 kept, no overflow (app/storage/database.py)


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s; see {RUNTIME}")


def ensure_free(*ports: int) -> None:
    """A port something else answers on would be measured in place of what the bench starts there."""
    taken = [port for port in ports if localenv.port_taken(port)]
    if taken:
        raise RuntimeError(
            f"{HOST}:{', '.join(map(str, taken))} already answer: a process left by an interrupted bench? "
            "Stop it first (pgrep -af 'benchmarks[.]|local/bench')"
        )


def _uvicorn(module: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    ensure_free(port)
    command = [str(BIN / "uvicorn"), module, "--host", HOST, "--port", str(port), "--loop", "uvloop"]
    command += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
    log = (RUNTIME / f"{module.split('.')[-1].split(':')[0]}-{port}.log").open("wb")
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


def anchor_env() -> dict[str, str]:
    """The asyncpg anchor's settings: the stack's own database, Redis and token secret."""
    stack = localenv.local_stack()
    environment = localenv.app_environment(stack, 1, localenv.local_secrets(stack), localenv.read_state(stack))
    return {
        "BENCH_PG_DSN": environment["CONNECTION_STRING"],
        "BENCH_REDIS_URL": environment["REDIS_CONNECTION_STRING"],
        "BENCH_JWT_SECRET": environment["JWT_SECRET"],
        "BENCH_POOL_SIZE": str(POOL_SIZE),
    }


def _stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


class Bench:
    """The benchmark's nginx and the processes behind its anchors, with replica counts that can change."""

    def __init__(self, spec: EnvironmentSpec, ports: Ports, node_json: str) -> None:
        self.spec, self.ports, self.node_json = spec, ports, node_json
        self.conf = RUNTIME / "nginx" / "nginx.conf"
        self.nginx: subprocess.Popen[bytes] | None = None
        self.anchors: list[subprocess.Popen[bytes]] = []
        self.extra_service: list[subprocess.Popen[bytes]] = []
        self.others: list[subprocess.Popen[bytes]] = []
        self.anchor_count = self.service_count = 0

    def _render(self) -> None:
        stack = localenv.local_stack()
        own = stack.ports.apps[: self.service_count]
        extra = self.ports.extra_service_replicas(max(0, self.service_count - len(stack.ports.apps)))
        replicas = [f"{HOST}:{port}" for port in (*own, *extra)]
        anchors = self.ports.asyncpg_replicas(self.anchor_count)
        self.conf.write_text(nginx_config(self.spec, replicas, RUNTIME / "nginx", self.ports, self.node_json, anchors))
        prefix = ["-c", str(self.conf), "-p", str(RUNTIME / "nginx")]
        subprocess.run([_nginx(), *prefix, "-t", "-q"], check=True, capture_output=True)

    def start(self) -> None:
        (RUNTIME / "nginx").mkdir(parents=True, exist_ok=True)
        ensure_free(self.ports.service, self.ports.static, self.ports.bare, self.ports.asyncpg)
        node_file = RUNTIME / "node.json"
        node_file.write_text(self.node_json)
        self.others = [
            _uvicorn("benchmarks.bare_app:app", p, {"BENCH_NODE_FILE": str(node_file)})
            for p in self.ports.bare_replicas
        ]
        self.service_count = len(localenv.local_stack().ports.apps)
        self.set_anchors(2, reload=False)
        self._render()
        prefix = ["-c", str(self.conf), "-p", str(RUNTIME / "nginx")]
        self.nginx = subprocess.Popen([_nginx(), *prefix, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        for port in (
            *self.ports.bare_replicas,
            self.ports.service,
            self.ports.static,
            self.ports.bare,
            self.ports.asyncpg,
        ):
            wait_for_port(port)

    def set_anchors(self, count: int, reload: bool = True) -> None:
        """Exactly `count` asyncpg replicas, started afresh: each holds the connections its last load needed,
        and the service's replicas and the anchors share PostgreSQL's 100 (a scale point at 4 replicas ran
        out of them with the 2-replica points' pools still held)."""
        _stop(self.anchors)
        ports = self.ports.asyncpg_replicas(count)
        self.anchors = [_uvicorn("benchmarks.asyncpg_app:app", p, anchor_env()) for p in ports]
        for port in ports:
            wait_for_port(port)
        self.anchor_count = count
        if reload:
            self.reload()

    def set_service(self, count: int) -> None:
        """The service behind `count` replicas: the stack's first ones, or all of them and extra ones started
        here with a serving replica's environment (each its own instance id and log folder)."""
        stack = localenv.local_stack()
        wanted = max(0, count - len(stack.ports.apps))
        _stop(self.extra_service[wanted:])
        self.extra_service = self.extra_service[:wanted]
        values, state = localenv.local_secrets(stack), localenv.read_state(stack)
        for i, port in enumerate(
            self.ports.extra_service_replicas(wanted)[len(self.extra_service) :], len(self.extra_service)
        ):
            name = f"bench-app-{len(stack.ports.apps) + i + 1}"
            env = localenv.replica_environment(stack, name, port, None, values, state)
            ensure_free(port)
            log = (RUNTIME / f"{name}.log").open("wb")
            self.extra_service.append(
                subprocess.Popen(
                    [str(BIN / "codexops"), "serve"],
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for port in self.ports.extra_service_replicas(wanted):
            wait_for_ready(port)
        self.service_count = count
        self.reload()

    def reload(self) -> None:
        self._render()
        if self.nginx is not None:
            self.nginx.send_signal(signal.SIGHUP)
            time.sleep(1.0)  # old workers finish; new ones take the new upstreams

    def stop(self) -> None:
        _stop([*self.anchors, *self.extra_service, *self.others, *([self.nginx] if self.nginx else [])])


def _nginx() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def wait_for_ready(port: int, timeout: float = 60) -> None:
    """A service replica answers /health/ready (listening is not enough: modules load after bind)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"service replica on {HOST}:{port} not ready after {timeout:.0f} s; see {RUNTIME}")


@contextmanager
def anchors_and_gateway(spec: EnvironmentSpec, ports: Ports, node_json: str) -> Iterator[Bench]:
    """Start the anchors and the benchmark's nginx; stop them afterwards, whatever happens."""
    bench = Bench(spec, ports, node_json)
    try:
        bench.start()
        yield bench
    finally:
        bench.stop()
