"""The local environment: a stack from real processes under supervisord, no Docker.

nginx in front of the spec's app replicas, Redis, PostgreSQL and Prometheus, every configuration
rendered from the stack's spec with the templates staging and production use. Each stack has its
own ports (stack_ports: from CODEX_PORT_BASE, else the spec's `local.portBase`, else the runbook's
:5002), state folder, data and supervisord, so `codexops up --stack staging` and `--stack production` run side by side.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from codexops import http_client
from codexops.local_errors import LocalEnvError as LocalEnvError  # callers catch localenv.LocalEnvError
from codexops.paths import local_root, stacks_root
from codexops.postgres_cluster import give_to_postgres, initdb, postgres_bin, psql, restrict_access
from codexops.supervisor_programs import catalogue_program, supervisor_program
from codexops.supervisor_rpc import Supervisor
from infra import app_env
from infra.alerts import render_alert_rules
from infra.catalogue import Entry, catalogue, scrape_jobs
from infra.render import render_alertmanager, render_nginx, render_prometheus
from infra.spec import EnvironmentSpec, SpecError, available_stacks, load_spec, repo_root
from infra.weights import upstream_weights

RUNTIME = local_root()
DEFAULT_STACK = "staging"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
LOOPBACK_NAMES = ("localhost", HOST)  # every local gateway serves these, whatever the stack's domain
GATEWAY_PORT = 5002  # the default stack's gateway: the runbook's curl commands use it
CANARY = "canary"  # a rollout's canary replica's program (never app-N: those are the serving replicas)
PORT_BASE_ENV = "CODEX_PORT_BASE"  # one base for every stack's ports (stack_ports): parallel tests
PORT_SLOT = 200  # ports a stack's range spans: 10 fixed ones, then up to 100 replicas
# The load generator is one address: the gateway's per-client limits are raised here, not removed.
LOCAL_API_RATE, LOCAL_API_BURST = "2000r/s", 2000


@dataclass(frozen=True)
class Process:
    name: str
    port: int
    health: str | None = None  # an HTTP path answering 200 when healthy; None: the port is enough
    autostart: bool = False  # started with supervisord (the datastores); the rest once they answer
    reloads: bool = False  # re-reads its rendered files on SIGHUP


@dataclass(frozen=True)
class Ports:
    gateway: int
    postgres: int
    redis: int
    prometheus: int
    alertmanager: int
    apps: tuple[int, ...]
    canary: int  # a rollout's canary replica, beside the serving ones (codexops/rollout/)


def stack_ports(spec: EnvironmentSpec) -> Ports:
    """The stack's ports, from one base per stack: gateway base, PostgreSQL +1, Redis +2, Prometheus +3,
    Alertmanager +4, a rollout's canary +5, app replicas from +10 on.

    The base: with CODEX_PORT_BASE=B set, stack i of the checkout's stacks in sorted order (kind 0,
    production 1, staging 2) takes B + PORT_SLOT * i, so every stack under one override has a range of
    its own and two overrides PORT_SLOT * (number of stacks) apart never meet (the tests give each shard
    its own B). Without it, the spec's `local.portBase`, or, without that, the runbook's ports (gateway
    5002, PostgreSQL 5433, Redis 6390, Prometheus 9091, Alertmanager 9095, apps 5101+, canary 5100). Raises
    LocalEnvError when a range leaves 1024-65535 or, without the override, meets another stack's range.
    """
    override = os.environ.get(PORT_BASE_ENV, "").strip()
    if override:
        return _ranged(spec, _slot_base(spec.stack, override))
    ports = _declared_ports(spec)
    _refuse_overlap(spec, ports)
    return ports


def _declared_ports(spec: EnvironmentSpec) -> Ports:
    """The stack's ports without the override: its spec's portBase, else the runbook's."""
    base = spec.local.portBase
    if base is None:
        return Ports(GATEWAY_PORT, 5433, 6390, 9091, 9095, tuple(5101 + i for i in range(spec.replicas)), 5100)
    return _ranged(spec, base)


def _ranged(spec: EnvironmentSpec, base: int) -> Ports:
    last = base + PORT_SLOT - 1
    if base < 1024 or last > 65535:
        raise LocalEnvError(f"stack {spec.stack}: ports {base}-{last} leave 1024-65535 (check {PORT_BASE_ENV})")
    apps = tuple(base + 10 + i for i in range(spec.replicas))
    return Ports(base, base + 1, base + 2, base + 3, base + 4, apps, base + 5)


def _slot_base(stack: str, override: str) -> int:
    stacks = available_stacks()
    if not override.isdigit():
        raise LocalEnvError(f"{PORT_BASE_ENV}={override!r}: a port number (1024-65535) was expected")
    if stack not in stacks:
        raise LocalEnvError(f"{PORT_BASE_ENV} gives ports to this checkout's stacks ({', '.join(stacks)}), not {stack}")
    return int(override) + PORT_SLOT * stacks.index(stack)


def _refuse_overlap(spec: EnvironmentSpec, ports: Ports) -> None:
    """Stacks without a portBase share the runbook's range (one at a time); any other pair must not meet."""
    mine = _port_set(ports)
    for other in available_stacks():
        declared = None if other == spec.stack else _declared_elsewhere(other)
        if declared is None or (declared[0] is None and spec.local.portBase is None):
            continue
        shared = sorted(mine & _port_set(declared[1]))
        if shared:
            listing = ", ".join(map(str, shared))
            raise LocalEnvError(f"stacks {spec.stack} and {other} both use ports {listing}: move one's local.portBase")


def _declared_elsewhere(stack: str) -> tuple[int | None, Ports] | None:
    """Another stack's (portBase, ports), read again only when its stack file changes (ports are asked
    often); None when its file is gone or invalid (loading that stack says why)."""
    path = repo_root() / f"Pulumi.{stack}.yaml"
    try:
        stat_ = path.stat()
        return _declared_in(stack, str(path), stat_.st_mtime_ns, stat_.st_size)
    except (OSError, SpecError, LocalEnvError):
        return None


@functools.lru_cache(maxsize=64)
def _declared_in(stack: str, path: str, mtime_ns: int, size: int) -> tuple[int | None, Ports]:
    spec = load_spec(stack, Path(path).parent)
    return spec.local.portBase, _declared_ports(spec)


def _port_set(ports: Ports) -> set[int]:
    return {ports.gateway, ports.postgres, ports.redis, ports.prometheus, ports.alertmanager, *ports.apps, ports.canary}


@dataclass(frozen=True)
class LocalStack:
    """One stack's local environment: where its files live and which ports it uses."""

    spec: EnvironmentSpec

    @property
    def name(self) -> str:
        return self.spec.stack

    @property
    def runtime(self) -> Path:
        return stacks_root() / self.name

    @property
    def private(self) -> Path:
        """Mode 0700: the only place a secret is written (secrets.env, the replicas' environment, Redis'
        configuration). The rest of the stack's folder may be open to every local user."""
        return self.runtime / "private"

    @property
    def secrets_file(self) -> Path:
        return self.private / "secrets.env"

    @property
    def scratch(self) -> Path:
        """Short paths for sockets (108-byte limit) and, as root, PostgreSQL's data (a clone's
        folder may be closed to the 'postgres' account)."""
        key = hashlib.sha1(str(self.runtime.resolve()).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"living-codex-{key}"

    @property
    def postgres_dir(self) -> Path:
        return self.scratch / "postgres" if os.geteuid() == 0 else self.runtime / "postgres"

    @property
    def ports(self) -> Ports:
        return stack_ports(self.spec)

    @property
    def apps(self) -> tuple[str, ...]:
        return tuple(f"app-{i}" for i in range(1, self.spec.replicas + 1))

    @property
    def services(self) -> tuple[Entry, ...]:
        """The catalogue's services this environment runs (infra/catalogue.py), datastores first."""
        local = [e for e in catalogue(self.spec, "local") if e.on("local") and e.local]
        return tuple(sorted(local, key=lambda e: not (e.local and e.local.autostart)))

    def port(self, entry: Entry) -> int:
        """An entry's port here: stack_ports' slot of that name, else the gateway's + its local offset."""
        ports = self.ports
        assert entry.local is not None
        slot = getattr(ports, entry.name, None)
        return slot if isinstance(slot, int) else ports.gateway + entry.local.local_offset

    @property
    def processes(self) -> tuple[Process, ...]:
        processes: list[Process] = []
        for e in self.services:
            assert e.local is not None
            if e.name == "app":  # one program per replica, each on its own port
                replicas = zip(self.apps, self.ports.apps, strict=True)
                processes += [Process(name, port, e.health) for name, port in replicas]
                continue
            program = e.local.program or e.name
            processes.append(Process(program, self.port(e), e.health, e.local.autostart, e.local.reloads))
        return tuple(processes)

    def gateway_url(self) -> str:
        return f"http://{HOST}:{self.ports.gateway}"

    def prometheus_url(self) -> str:
        return f"http://{HOST}:{self.ports.prometheus}"

    def alertmanager_url(self) -> str:
        return f"http://{HOST}:{self.ports.alertmanager}"

    def app_log(self, app: str) -> Path:
        return self.runtime / app / "logs" / "server.log"


def local_stack(name: str = DEFAULT_STACK) -> LocalStack:
    return LocalStack(load_spec(name))


# Compatibility for callers of the default stack.
def gateway_url(stack: str = DEFAULT_STACK) -> str:
    return local_stack(stack).gateway_url()


def prometheus_url(stack: str = DEFAULT_STACK) -> str:
    return local_stack(stack).prometheus_url()


def alertmanager_url(stack: str = DEFAULT_STACK) -> str:
    return local_stack(stack).alertmanager_url()


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


# -- secrets and state -----------------------------------------------------------------------------
LOCAL_SECRET_KEYS = ("JWT_SECRET", "ADMIN_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "GATE_PASSWORD")


def write_private(path: Path, text: str) -> None:
    """`text` in a file only its owner reads (0600), in a folder only its owner opens (0700), whatever
    the umask or the modes an earlier version left; replaced whole, never seen half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(descriptor, 0o600)  # an older temporary file keeps its mode through O_CREAT
        file.write(text)
    temporary.replace(path)


def local_secrets(stack: LocalStack | None = None) -> dict[str, str]:
    """Generated once per stack, kept in private/secrets.env, never in the repository. A key an older
    file lacks (GATE_PASSWORD) is added; the values already there are kept, also those of the
    secrets.env that older versions kept beside supervisord.conf (moved into private/)."""
    stack = stack or local_stack()
    path, legacy = stack.secrets_file, stack.runtime / "secrets.env"
    source = path if path.exists() else legacy
    values: dict[str, str] = {}
    if source.exists():
        values = dict(line.split("=", 1) for line in source.read_text().splitlines() if "=" in line)
    missing = [key for key in LOCAL_SECRET_KEYS if key not in values]
    if missing or source == legacy:
        values |= {key: secrets.token_urlsafe(36) for key in missing}
        write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()))
        legacy.unlink(missing_ok=True)
    return values


def read_state(stack: LocalStack) -> dict[str, Any]:
    """state.json: which release each replica serves ({app: release.json}) and the extra app env."""
    path = stack.runtime / "state.json"
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    state.setdefault("releases", {})
    state.setdefault("app_env", {})
    return state


def write_state(stack: LocalStack, state: dict[str, Any]) -> None:
    stack.runtime.mkdir(parents=True, exist_ok=True)
    temporary = stack.runtime / "state.json.tmp"
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(stack.runtime / "state.json")


def spec_env(spec: EnvironmentSpec) -> dict[str, str]:
    """What the spec decides for every replica: the same function as staging's and production's."""
    return app_env.spec_env(spec, "local")


def app_environment(stack: LocalStack, index: int, values: dict[str, str], state: dict[str, Any]) -> dict[str, str]:
    name = stack.apps[index - 1]
    return replica_environment(stack, name, stack.ports.apps[index - 1], state["releases"].get(name), values, state)


def replica_environment(
    stack: LocalStack,
    name: str,
    port: int,
    release: dict[str, Any] | None,
    values: dict[str, str],
    state: dict[str, Any],
) -> dict[str, str]:
    """A replica's environment (a serving one or the canary): the spec's, its port, its release's."""
    ports = stack.ports
    return {
        **spec_env(stack.spec),
        "CODEX_URLS": f"http://{HOST}:{port}",
        "CODEX_INSTANCE_ID": f"{stack.name}-{name}",
        "CONNECTION_STRING": app_env.postgres_dsn(HOST, ports.postgres, values["POSTGRES_PASSWORD"]),
        "REDIS_CONNECTION_STRING": app_env.redis_dsn(HOST, ports.redis, values["REDIS_PASSWORD"]),
        "JWT_SECRET": values["JWT_SECRET"],
        "ADMIN_PASSWORD": values["ADMIN_PASSWORD"],
        "GATE_PASSWORD": values["GATE_PASSWORD"],
        "LOG_DIR": str(stack.runtime / name / "logs"),
        "MEMORY_SAMPLE_INTERVAL_SECONDS": "2",
        "ENABLE_MEMORY_OPTIMIZATION": "true",
        **(
            {
                "CODEX_RELEASE": release["id"],
                "CODEX_RELEASE_DIGEST": release["digest"],
                "CODEX_RELEASE_MANIFEST": release.get("manifest_digest", ""),  # which build of the id
                **release.get("env", {}),
            }
            if release
            else {}
        ),
        **state["app_env"],
    }


def app_command(release: dict[str, Any] | None) -> str:
    """The replica runs its release's own virtualenv; with no release deployed, this checkout's."""
    if release is None:
        return f"{BIN / 'codexops'} serve"
    # Verified at every start, supervisord's restarts included, by this checkout's code (launch.py).
    folder, digest = Path(release["path"]), release.get("manifest_digest") or "none"
    return f"{BIN / 'python'} -I -m codexops.releases.launch {folder} {digest} serve"


# -- rendering ---------------------------------------------------------------------------------------
def _supervisor_environment(environments: dict[str, dict[str, str]]) -> str:
    """The programs' `environment=` lines, for the private file supervisord.conf includes: supervisord
    (as the stack's owner) reads it and merges each into the program's section of the same name."""
    sections = []
    for name, environment in environments.items():
        quoted = ",".join(f'{k}="{v}"' for k, v in environment.items())
        sections.append(f"[program:{name}]\nenvironment={quoted}\n")
    return "\n".join(sections)


def redis_config(stack: LocalStack, values: dict[str, str]) -> str:
    """In a private file rather than on the command line, which every local user can read (/proc)."""
    return f'port {stack.ports.redis}\nbind {HOST}\nrequirepass {values["REDIS_PASSWORD"]}\nsave ""\nappendonly no\n'


def canary_of(state: dict[str, Any]) -> dict[str, Any] | None:
    """The rollout in progress: {"release": release.json, "weight": percent}, or None."""
    canary: dict[str, Any] | None = state.get("canary")
    return canary


def app_program(stack: LocalStack, name: str, state: dict[str, Any]) -> str:
    """A replica: its release's command, started once the datastores answer, drained at stop."""
    canary = canary_of(state)
    release = canary["release"] if name == CANARY and canary else state["releases"].get(name)
    return supervisor_program(
        name,
        app_command(release),
        directory=stack.runtime / name,
        logs=stack.runtime / "logs",
        autostart=False,
        stopwaitsecs=int(stack.spec.shutdown.drainSeconds + stack.spec.shutdown.graceSeconds + 5),
        final_exit="78",  # launch.REFUSED: hashing may outlast startsecs, and then it would loop
    )


def supervisor_config(stack: LocalStack, bins: dict[str, str], state: dict[str, Any]) -> str:
    """Holds no secret: the replicas' environment comes from the included private file."""
    run, pg = stack.runtime, stack.postgres_dir
    postgres_user = "postgres" if os.geteuid() == 0 else None
    sock = stack.scratch / "supervisor.sock"
    header = (
        f"[unix_http_server]\nfile={sock}\nchmod=0700\n\n"
        f"[supervisord]\npidfile={run / 'supervisord.pid'}\nlogfile={run / 'logs' / 'supervisord.log'}\n"
        f"childlogdir={run / 'logs'}\nnodaemon=false\nminfds=1024\nidentifier=living-codex-{stack.name}\n\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        f"[supervisorctl]\nserverurl=unix://{sock}\n\n"
        f"[include]\nfiles={stack.private / 'environment.conf'}\n\n"
    )
    programs = []
    for entry in stack.services:
        assert entry.local is not None
        if entry.name == "app":
            programs += [app_program(stack, name, state) for name in stack.apps]
            if canary_of(state):
                programs.append(app_program(stack, CANARY, state))
            continue
        folder = pg if entry.local.cluster else run / (entry.local.program or entry.name)
        programs.append(
            catalogue_program(
                entry,
                binary=bins.get(entry.local.binary, entry.local.binary),
                directory=folder,
                private=stack.private,
                host=HOST,
                port=stack.port(entry),
                logs=run / "logs",
                user=postgres_user if entry.local.cluster else None,
            )
        )
    return header + "\n".join(programs)


def upstream_weights_now(stack: LocalStack, canary: dict[str, Any] | None) -> tuple[list[str], dict[str, int]]:
    """The replicas nginx routes to and their weights: with a canary in the upstream, the step's share."""
    serving = [f"{HOST}:{port}" for port in stack.ports.apps]
    if not canary or not canary.get("weight"):
        return serving, {}
    weights = upstream_weights(int(canary["weight"]), len(serving))
    address = f"{HOST}:{stack.ports.canary}"
    return [*serving, address], {**dict.fromkeys(serving, weights.baseline), address: weights.canary}


def nginx_conf(stack: LocalStack, canary: dict[str, Any] | None) -> str:
    """nginx.conf routing to every replica (and a rollout's canary, weighted). No TLS on loopback, and the
    loopback names are the ones served."""
    ports = stack.ports
    upstreams, weights = upstream_weights_now(stack, canary)
    return render_nginx(
        stack.spec.model_copy(update={"tls": False, "serverNames": LOOPBACK_NAMES}),
        upstreams,
        weights=weights,
        runtime_dir=str(stack.runtime / "nginx"),
        listen_host=f"{HOST}:",
        http_port=ports.gateway,
        api_rate=LOCAL_API_RATE,
        api_burst=LOCAL_API_BURST,
    )


# Which process reads each rendered file (it re-reads it on SIGHUP).
READERS = {"nginx.conf": "nginx", "prometheus.yml": "prometheus", "alert-rules.yml": "prometheus"}
READERS["alertmanager.yml"] = "alertmanager"


def rendered_files(stack: LocalStack) -> dict[Path, str]:
    """The gateway's, Prometheus' and Alertmanager's files as the spec renders them now."""
    run = stack.runtime
    canary = canary_of(read_state(stack))
    scraped = [stack.ports.canary] if canary else []  # the canary is scraped from its start
    upstreams = [f"{HOST}:{port}" for port in (*stack.ports.apps, *scraped)]
    prometheus = render_prometheus(
        stack.spec,
        upstreams,
        rules_path=str(run / "prometheus" / "alert-rules.yml"),
        scrape_interval="5s",
        alertmanagers=[f"{HOST}:{stack.ports.alertmanager}"],
        extra_jobs=scrape_jobs(stack.services, lambda e: [f"{HOST}:{stack.port(e)}"]),
    )
    return {
        run / "nginx" / "nginx.conf": nginx_conf(stack, canary),
        run / "prometheus" / "prometheus.yml": prometheus,
        run / "prometheus" / "alert-rules.yml": render_alert_rules(stack.spec),
        run / "alertmanager" / "alertmanager.yml": render_alertmanager(stack.spec, group_wait="5s"),
    }


def stale_files(stack: LocalStack) -> list[Path]:
    """Rendered files whose text on disk is not what the spec renders now."""
    return [path for path, text in rendered_files(stack).items() if not path.exists() or path.read_text() != text]


def write_supervisor_conf(stack: LocalStack, state: dict[str, Any]) -> None:
    values = local_secrets(stack)
    environments = {name: app_environment(stack, i, values, state) for i, name in enumerate(stack.apps, start=1)}
    canary = canary_of(state)
    if canary:
        environments[CANARY] = replica_environment(stack, CANARY, stack.ports.canary, canary["release"], values, state)
    write_private(stack.private / "environment.conf", _supervisor_environment(environments))
    write_private(stack.private / "redis.conf", redis_config(stack, values))
    (stack.runtime / "supervisord.conf").write_text(supervisor_config(stack, binaries(), state))


def make_folders(stack: LocalStack) -> None:
    """Every process's working folder (a replica added to the spec gets its own)."""
    programs = [e.local.program or e.name for e in stack.services if e.local and not e.local.cluster]
    for sub in ("logs", *(p for p in programs if p != "app"), *stack.apps, CANARY):
        (stack.runtime / sub).mkdir(parents=True, exist_ok=True)


def render_files(stack: LocalStack, state: dict[str, Any]) -> None:
    make_folders(stack)
    for path, text in rendered_files(stack).items():
        path.write_text(text)
    write_supervisor_conf(stack, state)


# -- supervisor ------------------------------------------------------------------------------------
def _stack(stack: LocalStack | str | None) -> LocalStack:
    if isinstance(stack, LocalStack):
        return stack
    return local_stack(stack or DEFAULT_STACK)


def supervisord_pid(stack: LocalStack | str | None = None) -> int | None:
    path = _stack(stack).runtime / "supervisord.pid"
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def supervisor(stack: LocalStack | str | None = None) -> Supervisor:
    """The stack's supervisord over its socket: what codexops itself starts, stops and asks."""
    return Supervisor(_stack(stack).scratch / "supervisor.sock")


def process_states(stack: LocalStack) -> dict[str, str]:
    if supervisord_pid(stack) is None:
        return {}
    try:
        return supervisor(stack).states()
    except LocalEnvError:  # shutting down, or gone since the pid check
        return {}


# -- health ----------------------------------------------------------------------------------------
def healthy(process: Process) -> bool:
    if not port_taken(process.port):
        return False
    if process.health is None:
        return True
    try:
        return http_client.get(f"http://{HOST}:{process.port}{process.health}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    check: Callable[[], bool], what: str, timeout: float, say: Callable[[str], None], stack: LocalStack | None = None
) -> None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            say(f"  {what:<12} ready ({time.monotonic() - began:.1f} s)")
            return
        time.sleep(0.2)
    log = _stack(stack).runtime / "logs" / f"{what}.out.log"
    tail = log.read_text()[-1500:] if log.exists() else ""
    raise LocalEnvError(
        f"{what} did not become healthy within {timeout:.0f} s; its log "
        f"({log}) ends with:\n{tail}\nRun `codexops down --stack {_stack(stack).name}` and try again."
    )


def make_scratch(stack: LocalStack) -> None:
    """The scratch folder's name in the shared temporary folder is predictable: one another local user
    made first (who could then swap what we create in it, PostgreSQL's data as root, for symlinks) is
    refused."""
    stack.scratch.mkdir(mode=0o755, exist_ok=True)
    info = stack.scratch.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise LocalEnvError(
            f"{stack.scratch} is not this account's own folder (owner uid {info.st_uid}, "
            f"{stat.filemode(info.st_mode)}): another local user may have made it. Remove it "
            f"(rm -rf {stack.scratch}) and run `codexops up --stack {stack.name}` again."
        )


# -- PostgreSQL ----------------------------------------------------------------------------------------
def init_postgres(stack: LocalStack, say: Callable[[str], None]) -> None:
    """The data directory, initialised once; its socket folder (postgres_dir) open to the cluster's
    owner only, and its pg_hba.conf restricted, at every `up` (a cluster from an older version trusted
    every local account)."""
    stack.postgres_dir.mkdir(parents=True, exist_ok=True)
    stack.postgres_dir.chmod(0o700)
    give_to_postgres(stack.postgres_dir)
    if (stack.postgres_dir / "data" / "PG_VERSION").exists():
        restrict_access(stack.postgres_dir / "data")
        return
    say("  initialising PostgreSQL data directory")
    initdb(stack.postgres_dir / "data")


def sql(stack: LocalStack, statement: str, database: str = "postgres") -> str:
    return psql(stack.postgres_dir, stack.ports.postgres, statement, database)


def postgres_accepts(stack: LocalStack) -> bool:
    """Answers a query: the port opens while PostgreSQL still refuses connections ("starting up")."""
    if not port_taken(stack.ports.postgres):
        return False
    try:
        return sql(stack, "SELECT 1") == "1"
    except (subprocess.SubprocessError, OSError):
        return False


def bootstrap_database(stack: LocalStack, values: dict[str, str]) -> None:
    # The stack's secrets file is the source of truth: a data directory kept from an earlier clone at
    # the same path (it lives under /tmp as root) gets this password too, or the replicas are refused.
    verb = "ALTER" if sql(stack, "SELECT 1 FROM pg_roles WHERE rolname = 'codex'") else "CREATE"
    sql(stack, f"{verb} ROLE codex LOGIN PASSWORD '{values['POSTGRES_PASSWORD']}'")
    if not sql(stack, "SELECT 1 FROM pg_database WHERE datname = 'livingcodex'"):
        sql(stack, "CREATE DATABASE livingcodex OWNER codex")


# -- commands --------------------------------------------------------------------------------------
def up(
    spec: EnvironmentSpec,
    say: Callable[[str], None],
    app_env: dict[str, str] | None = None,
    timeout: float = 90,
) -> LocalStack:
    """Start (or complete) the stack of `spec` and wait until every process is healthy. Idempotent.
    The replicas keep the release deployed to them; `app_env` (e.g. chaos) replaces the previous one."""
    stack = LocalStack(spec)
    binaries()
    values = local_secrets(stack)
    running = supervisord_pid(stack) is not None
    if not running:
        taken = [p for p in stack.processes if port_taken(p.port)]
        if taken:
            listing = ", ".join(f"{p.port} ({p.name})" for p in taken)
            raise LocalEnvError(
                f"ports already taken: {listing}. Stop what listens there "
                f"(lsof -i :{taken[0].port}) or run `codexops down --stack {stack.name}`."
            )
    state = read_state(stack)
    state["app_env"] = dict(app_env or {})
    for app, release in list(state["releases"].items()):
        if not (Path(release["path"]) / "venv" / "bin" / "codexops").exists():
            say(f"  {app}: release {release['id']} is gone from the release store; it serves this checkout")
            del state["releases"][app]
    write_state(stack, state)
    make_scratch(stack)
    init_postgres(stack, say)
    render_files(stack, state)
    control = supervisor(stack)
    if running:
        say("  supervisord already running: reloading configuration")
        control.update()  # restarts programs whose command or environment changed
        # re-read rendered files (PostgreSQL: pg_hba.conf)
        control.signal("HUP", *(p.name for p in stack.processes if p.reloads))
    else:
        say(f"  starting supervisord for stack {stack.name}")
        subprocess.run(
            [str(BIN / "supervisord"), "-c", str(stack.runtime / "supervisord.conf")], check=True, timeout=30
        )
    first = [p for p in stack.processes if p.autostart]
    control.start(*(p.name for p in first))
    wait_until(lambda: postgres_accepts(stack), "postgres", timeout, say, stack)
    for process in first:
        if process.name != "postgres":
            wait_until(lambda p=process: healthy(p), process.name, timeout, say, stack)  # type: ignore[misc]
    bootstrap_database(stack, values)
    then = [p for p in stack.processes if not p.autostart]
    control.start(*(p.name for p in then))
    for process in then:
        wait_until(lambda p=process: healthy(p), process.name, timeout, say, stack)  # type: ignore[misc]
    wait_until(lambda: replicas_scraped(stack), "scrapes", timeout, say, stack)
    return stack


def replicas_scraped(stack: LocalStack | None = None) -> bool:
    """Prometheus has scraped every app replica successfully at least once."""
    stack = stack or local_stack()
    try:
        targets = http_client.get(f"{stack.prometheus_url()}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
    except (httpx.HTTPError, KeyError, ValueError):
        return False
    app = [t for t in targets if t["labels"].get("job") == "living-codex"]
    return len(app) == len(stack.apps) and all(t["health"] == "up" for t in app)


def down(
    say: Callable[[str], None], purge: bool = False, timeout: float = 60, stack: LocalStack | str | None = None
) -> None:
    """Stop every process of the stack; none is left behind. --purge also removes data and secrets."""
    local = _stack(stack)
    pid = supervisord_pid(local)
    if pid is not None:
        say(f"  stopping stack {local.name} (apps drain first)")
        control = supervisor(local)
        with contextlib.suppress(LocalEnvError):  # if this fails, the shutdown stops them with the rest
            control.stop("nginx", *local.apps)
        with contextlib.suppress(LocalEnvError):  # shutting down already
            control.shutdown()
        began = time.monotonic()
        while supervisord_pid(local) is not None and time.monotonic() - began < timeout:
            time.sleep(0.2)
        if supervisord_pid(local) is not None:
            os.kill(pid, 9)
    leftovers = [p for p in local.processes if port_taken(p.port)]
    if leftovers and pid is not None:
        raise LocalEnvError(
            "still listening after shutdown: "
            + ", ".join(f"{p.name} on {p.port}" for p in leftovers)
            + "; find them with lsof -i"
        )
    if purge:
        for directory in (local.runtime, local.scratch):
            if directory.exists():
                shutil.rmtree(directory)
                say(f"  removed {directory}")


def status(stack: LocalStack | str | None = None) -> list[tuple[str, str, int, str]]:
    """(process, supervisor state, port, health) for each process of the stack."""
    local = _stack(stack)
    states = process_states(local)
    return [
        (
            p.name,
            states.get(p.name, "STOPPED" if states else "NOT RUNNING"),
            p.port,
            "healthy" if healthy(p) else "unhealthy",
        )
        for p in local.processes
    ]
