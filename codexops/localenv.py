"""The local environment: the whole stack from real processes under supervisord, no Docker.

nginx on 127.0.0.1:5002 in front of two app replicas, Redis, PostgreSQL and Prometheus, every
configuration rendered from the stack's spec with the templates staging and production use.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from codexops.postgres_cluster import give_to_postgres, initdb, postgres_bin, psql
from infra.alerts import render_alert_rules
from infra.render import render_alertmanager, render_nginx, render_prometheus
from infra.spec import ROOT, EnvironmentSpec

RUNTIME = ROOT / ".local"
# PostgreSQL runs as the 'postgres' account when we are root; a clone's folder may be closed to it,
# so its data then lives under the system temporary folder, one per clone.
POSTGRES_DIR = (
    (Path(tempfile.gettempdir()) / f"living-codex-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]}" / "postgres")
    if os.geteuid() == 0
    else RUNTIME / "postgres"
)
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
GATEWAY_PORT = 5002
APP_PORTS = (5101, 5102)
REDIS_PORT = 6390
POSTGRES_PORT = 5433
PROMETHEUS_PORT = 9091
ALERTMANAGER_PORT = 9095
# The load generator is one address: the gateway's per-client limits are raised here, not removed.
LOCAL_API_RATE, LOCAL_API_BURST = "2000r/s", 2000


class LocalEnvError(RuntimeError):
    """Something stops the local environment; the message says what to do."""


@dataclass(frozen=True)
class Process:
    name: str
    port: int
    health: str | None = None  # an HTTP path answering 200 when healthy; None: the port is enough


PROCESSES = (
    Process("postgres", POSTGRES_PORT),
    Process("redis", REDIS_PORT),
    *(Process(f"app-{i}", port, "/health/ready") for i, port in enumerate(APP_PORTS, start=1)),
    Process("nginx", GATEWAY_PORT, "/health/ready"),
    Process("prometheus", PROMETHEUS_PORT, "/-/ready"),
    Process("alertmanager", ALERTMANAGER_PORT, "/-/ready"),
)


def gateway_url() -> str:
    return f"http://{HOST}:{GATEWAY_PORT}"


def prometheus_url() -> str:
    return f"http://{HOST}:{PROMETHEUS_PORT}"


def alertmanager_url() -> str:
    return f"http://{HOST}:{ALERTMANAGER_PORT}"


# -- prerequisites ------------------------------------------------------------------------------
def binaries() -> dict[str, str]:
    found = {
        "postgres": postgres_bin("postgres"),
        "initdb": postgres_bin("initdb"),
        "psql": postgres_bin("psql"),
    }
    for name in ("redis-server", "nginx", "prometheus", "prometheus-alertmanager"):
        path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if path is None:
            raise LocalEnvError(f"{name} is not installed: run `make setup` (Debian package)")
        found[name] = path
    return found


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


# -- secrets and files -----------------------------------------------------------------------------
def local_secrets() -> dict[str, str]:
    """Generated once per machine, kept in .local/secrets.env (mode 0600), never in the repository."""
    path = RUNTIME / "secrets.env"
    if path.exists():
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    values = {
        key: secrets.token_urlsafe(36)
        for key in ("JWT_SECRET", "ADMIN_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD")
    }
    RUNTIME.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return values


def app_environment(index: int, values: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    return {
        "CODEX_ENVIRONMENT": "Staging",
        "CODEX_URLS": f"http://{HOST}:{APP_PORTS[index - 1]}",
        "CODEX_INSTANCE_ID": f"app-{index}",
        "CONNECTION_STRING": f"postgresql://codex:{values['POSTGRES_PASSWORD']}@{HOST}:{POSTGRES_PORT}/livingcodex",
        "REDIS_CONNECTION_STRING": f"redis://:{values['REDIS_PASSWORD']}@{HOST}:{REDIS_PORT}/0",
        "JWT_SECRET": values["JWT_SECRET"],
        "ADMIN_PASSWORD": values["ADMIN_PASSWORD"],
        "LOG_DIR": str(RUNTIME / f"app-{index}" / "logs"),
        "SHUTDOWN_DRAIN_SECONDS": "1",
        "MEMORY_SAMPLE_INTERVAL_SECONDS": "2",
        "ENABLE_MEMORY_OPTIMIZATION": "true",
        **extra,
    }


def _supervisor_program(
    name: str,
    command: str,
    *,
    directory: Path,
    user: str | None = None,
    environment: dict[str, str] | None = None,
    autostart: bool = True,
    stopsignal: str = "TERM",
    stopwaitsecs: int = 30,
) -> str:
    lines = [
        f"[program:{name}]",
        f"command={command}",
        f"directory={directory}",
        f"autostart={'true' if autostart else 'false'}",
        "autorestart=true",
        "startsecs=1",
        f"stopsignal={stopsignal}",
        f"stopwaitsecs={stopwaitsecs}",
        "stopasgroup=true",
        "killasgroup=true",
        f"stdout_logfile={RUNTIME / 'logs' / f'{name}.out.log'}",
        "redirect_stderr=true",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=2",
    ]
    if user:
        lines.append(f"user={user}")
    if environment:
        quoted = ",".join(f'{k}="{v}"' for k, v in environment.items())
        lines.append(f"environment={quoted}")
    return "\n".join(lines) + "\n"


def supervisor_config(bins: dict[str, str], values: dict[str, str], app_env: dict[str, str]) -> str:
    run = RUNTIME
    postgres_user = "postgres" if os.geteuid() == 0 else None
    header = (
        f"[unix_http_server]\nfile={run / 'supervisor.sock'}\nchmod=0700\n\n"
        f"[supervisord]\npidfile={run / 'supervisord.pid'}\nlogfile={run / 'logs' / 'supervisord.log'}\n"
        f"childlogdir={run / 'logs'}\nnodaemon=false\nminfds=1024\n\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        f"[supervisorctl]\nserverurl=unix://{run / 'supervisor.sock'}\n\n"
    )
    programs = [
        _supervisor_program(
            "postgres",
            f"{bins['postgres']} -D {POSTGRES_DIR / 'data'} -p {POSTGRES_PORT} "
            f"-k {POSTGRES_DIR} -c listen_addresses={HOST}",
            directory=POSTGRES_DIR,
            user=postgres_user,
            stopsignal="INT",
        ),
        _supervisor_program(
            "redis",
            f"{bins['redis-server']} --port {REDIS_PORT} --bind {HOST} --requirepass "
            f"{values['REDIS_PASSWORD']} --save '' --appendonly no",
            directory=run / "redis",
        ),
    ]
    for index in (1, 2):
        programs.append(
            _supervisor_program(
                f"app-{index}",
                f"{BIN / 'codexops'} serve",
                directory=run / f"app-{index}",
                environment=app_environment(index, values, app_env),
                autostart=False,
                stopwaitsecs=40,
            )
        )
    programs.append(
        _supervisor_program(
            "nginx",
            f"{bins['nginx']} -c {run / 'nginx' / 'nginx.conf'} -p {run / 'nginx'} -g 'daemon off;'",
            directory=run / "nginx",
            autostart=False,
            stopsignal="QUIT",
        )
    )
    programs.append(
        _supervisor_program(
            "prometheus",
            f"{bins['prometheus']} --config.file={run / 'prometheus' / 'prometheus.yml'} "
            f"--storage.tsdb.path={run / 'prometheus' / 'data'} "
            f"--web.listen-address={HOST}:{PROMETHEUS_PORT} "
            "--web.enable-lifecycle",
            directory=run / "prometheus",
            autostart=False,
        )
    )
    programs.append(
        _supervisor_program(
            "alertmanager",  # --cluster.listen-address= turns off clustering (no gossip port)
            f"{bins['prometheus-alertmanager']} --config.file={run / 'alertmanager' / 'alertmanager.yml'} "
            f"--storage.path={run / 'alertmanager' / 'data'} "
            f"--web.listen-address={HOST}:{ALERTMANAGER_PORT} --cluster.listen-address=",
            directory=run / "alertmanager",
            autostart=False,
        )
    )
    return header + "\n".join(programs)


def render_files(spec: EnvironmentSpec, bins: dict[str, str], values: dict[str, str], app_env: dict[str, str]) -> None:
    for sub in ("logs", "nginx", "prometheus", "alertmanager", "redis", "app-1", "app-2"):
        (RUNTIME / sub).mkdir(parents=True, exist_ok=True)
    upstreams = [f"{HOST}:{port}" for port in APP_PORTS]
    (RUNTIME / "nginx" / "nginx.conf").write_text(
        render_nginx(
            spec,
            upstreams,
            runtime_dir=str(RUNTIME / "nginx"),
            listen_host=f"{HOST}:",
            http_port=GATEWAY_PORT,
            api_rate=LOCAL_API_RATE,
            api_burst=LOCAL_API_BURST,
        )
    )
    (RUNTIME / "prometheus" / "prometheus.yml").write_text(
        render_prometheus(
            spec,
            upstreams,
            rules_path=str(RUNTIME / "prometheus" / "alert-rules.yml"),
            scrape_interval="5s",
            alertmanagers=[f"{HOST}:{ALERTMANAGER_PORT}"],
        )
    )
    (RUNTIME / "alertmanager" / "alertmanager.yml").write_text(render_alertmanager(spec, group_wait="5s"))
    (RUNTIME / "prometheus" / "alert-rules.yml").write_text(render_alert_rules(spec))
    (RUNTIME / "supervisord.conf").write_text(supervisor_config(bins, values, app_env))


# -- supervisor ------------------------------------------------------------------------------------
def supervisord_pid() -> int | None:
    path = RUNTIME / "supervisord.pid"
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def supervisorctl(*args: str, check: bool = True) -> str:
    result = subprocess.run(
        [str(BIN / "supervisorctl"), "-c", str(RUNTIME / "supervisord.conf"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode not in (0, 3):  # 3: some process is not running (status)
        raise LocalEnvError(f"supervisorctl {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


def process_states() -> dict[str, str]:
    if supervisord_pid() is None:
        return {}
    states = {}
    for line in supervisorctl("status", check=False).splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    return states


# -- health ----------------------------------------------------------------------------------------
def healthy(process: Process) -> bool:
    if not port_taken(process.port):
        return False
    if process.health is None:
        return True
    try:
        return httpx.get(f"http://{HOST}:{process.port}{process.health}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Callable[[], bool], what: str, timeout: float, say: Callable[[str], None]) -> None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            say(f"  {what:<12} ready ({time.monotonic() - began:.1f} s)")
            return
        time.sleep(0.2)
    log = RUNTIME / "logs" / f"{what}.out.log"
    tail = log.read_text()[-1500:] if log.exists() else ""
    raise LocalEnvError(
        f"{what} did not become healthy within {timeout:.0f} s; its log "
        f"({log}) ends with:\n{tail}\nRun `codexops down` and try again."
    )


# -- PostgreSQL bootstrap --------------------------------------------------------------------------
def init_postgres(say: Callable[[str], None]) -> None:
    if (POSTGRES_DIR / "data" / "PG_VERSION").exists():
        return
    say("  initialising PostgreSQL data directory")
    POSTGRES_DIR.mkdir(parents=True, exist_ok=True)
    give_to_postgres(POSTGRES_DIR)
    initdb(POSTGRES_DIR / "data")


def bootstrap_database(values: dict[str, str]) -> None:
    def sql(statement: str) -> str:
        return psql(POSTGRES_DIR, POSTGRES_PORT, statement)

    if not sql("SELECT 1 FROM pg_roles WHERE rolname = 'codex'"):
        sql(f"CREATE ROLE codex LOGIN PASSWORD '{values['POSTGRES_PASSWORD']}'")
    if not sql("SELECT 1 FROM pg_database WHERE datname = 'livingcodex'"):
        sql("CREATE DATABASE livingcodex OWNER codex")


# -- commands --------------------------------------------------------------------------------------
def up(
    spec: EnvironmentSpec,
    say: Callable[[str], None],
    app_env: dict[str, str] | None = None,
    timeout: float = 90,
) -> None:
    """Start (or complete) the environment and wait until every process is healthy. Idempotent."""
    bins = binaries()
    values = local_secrets()
    app_env = app_env or {}
    running = supervisord_pid() is not None
    if not running:
        taken = [p for p in PROCESSES if port_taken(p.port)]
        if taken:
            listing = ", ".join(f"{p.port} ({p.name})" for p in taken)
            raise LocalEnvError(
                f"ports already taken: {listing}. Stop what listens there "
                f"(lsof -i :{taken[0].port}) or run `codexops down`."
            )
    init_postgres(say)
    render_files(spec, bins, values, app_env)
    if running:
        say("  supervisord already running: reloading configuration")
        supervisorctl("update")  # restarts programs whose command or environment changed
        supervisorctl("signal", "HUP", "nginx", "prometheus", "alertmanager", check=False)  # re-read rendered files
    else:
        say("  starting supervisord")
        subprocess.run([str(BIN / "supervisord"), "-c", str(RUNTIME / "supervisord.conf")], check=True, timeout=30)
    supervisorctl("start", "postgres", "redis", check=False)
    by_name = {p.name: p for p in PROCESSES}
    for name in ("postgres", "redis"):
        wait_until(lambda n=name: healthy(by_name[n]), name, timeout, say)  # type: ignore[misc]
    bootstrap_database(values)
    supervisorctl("start", "app-1", "app-2", "nginx", "prometheus", "alertmanager", check=False)
    for name in ("app-1", "app-2", "nginx", "prometheus", "alertmanager"):
        wait_until(lambda n=name: healthy(by_name[n]), name, timeout, say)  # type: ignore[misc]
    wait_until(replicas_scraped, "scrapes", timeout, say)


def replicas_scraped() -> bool:
    """Prometheus has scraped every app replica successfully at least once."""
    try:
        targets = httpx.get(f"{prometheus_url()}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
    except (httpx.HTTPError, KeyError, ValueError):
        return False
    app = [t for t in targets if t["labels"].get("job") == "living-codex"]
    return len(app) == len(APP_PORTS) and all(t["health"] == "up" for t in app)


def down(say: Callable[[str], None], purge: bool = False, timeout: float = 60) -> None:
    """Stop every process; none is left behind. --purge also removes data and secrets."""
    pid = supervisord_pid()
    if pid is not None:
        say("  stopping processes (apps drain first)")
        supervisorctl("stop", "nginx", "app-1", "app-2", check=False)
        supervisorctl("shutdown", check=False)
        began = time.monotonic()
        while supervisord_pid() is not None and time.monotonic() - began < timeout:
            time.sleep(0.2)
        if supervisord_pid() is not None:
            os.kill(pid, 9)
    leftovers = [p for p in PROCESSES if port_taken(p.port)]
    if leftovers and pid is not None:
        raise LocalEnvError(
            "still listening after shutdown: "
            + ", ".join(f"{p.name} on {p.port}" for p in leftovers)
            + "; find them with lsof -i"
        )
    if purge:
        for directory in (RUNTIME, POSTGRES_DIR):
            if directory.exists():
                shutil.rmtree(directory)
                say(f"  removed {directory}")


def status() -> list[tuple[str, str, int, str]]:
    """(process, supervisor state, port, health) for each process."""
    states = process_states()
    return [
        (
            p.name,
            states.get(p.name, "STOPPED" if states else "NOT RUNNING"),
            p.port,
            "healthy" if healthy(p) else "unhealthy",
        )
        for p in PROCESSES
    ]
