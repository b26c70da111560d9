"""The service catalogue: every service of an environment declared once, derived from the spec.

One `Entry` per service: its image (by digest, infra/images.py), ports by name, replicas, resources,
health, storage, who may reach it (peers) and its environment (infra/app_env.py for the app). The
renderers read it: a Kubernetes workload (infra/components/workload.py), a Docker container
(infra/components/container.py) and a supervisor program (codexops/supervisor_programs.py); so do the
NetworkPolicy paths, Prometheus' scrape jobs, the local environment's processes and the checklist's
replica hosts. What only one service needs (PostgreSQL's init scripts, nginx's reload loop) stays in
its component as extras passed to the renderers.

Pure (no Pulumi): the local environment reads it too. Adding a service is one builder in `BUILDERS`
plus its image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from infra import images
from infra.app_env import Platform, plain_env, spec_env
from infra.spec import POSTGRES_DEFAULT_MAX_CONNECTIONS, EnvironmentSpec, Resources

PREFIX = "living-codex"
APP_PORT_NAME = "http"
# The unprivileged nginx image cannot bind ports below 1024; the Service or the host maps 80/443.
GATEWAY_HTTP, GATEWAY_HTTPS = 8080, 8443
POSTGRES_PORT, REDIS_PORT = 5432, 6379
PROMETHEUS_PORT, GRAFANA_PORT, ALERTMANAGER_PORT = 9090, 3000, 9093
JAEGER_UI_PORT, OTLP_HTTP_PORT, KSM_PORT = 16686, 4318, 8080
Kind = Literal["deployment", "statefulset"]


@dataclass(frozen=True)
class Access:
    """Who may open one of a service's ports: a NetworkPolicy path on Kubernetes."""

    port: str  # a name in the entry's ports
    peers: tuple[str, ...]  # components (their pods' app.kubernetes.io/name, without the prefix)


@dataclass(frozen=True)
class LocalProgram:
    """How the local environment runs a service under supervisord. `command` is a template: {bin} (the
    binary found on this machine), {dir} (the program's folder), {private} (the stack's 0700 folder),
    {host} and {port}."""

    command: str
    binary: str
    program: str = ""  # the supervisor program's name; default the entry's
    autostart: bool = False  # started with supervisord (datastores), or once they are up
    stopsignal: str = "TERM"
    reloads: bool = False  # re-reads its rendered files on SIGHUP (to most programs SIGHUP is the end)
    cluster: bool = False  # runs in the stack's PostgreSQL folder and, as root, as the postgres account
    local_offset: int = 0  # a port of its own: the gateway's local port + this (stack_ports has none)


@dataclass(frozen=True)
class Entry:
    name: str  # the component: host living-codex-<name>, labels app.kubernetes.io/name=living-codex-<name>
    image: str  # by digest (or a tag resolved at preview: Target.pinned)
    ports: Mapping[str, int]  # by name; the first is the one peers and probes use unless told
    resources: Resources
    replicas: int = 1
    kind: Kind = "deployment"
    storage: str = ""  # a data volume of this size; "" for none
    data_path: str = ""  # where the data volume is mounted
    uid: int = 10001  # the pod's user (owns the data volume)
    health: str | None = None  # an HTTP path answering 200 when ready; None: the port accepting is enough
    access: tuple[Access, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    metrics: str | None = None  # the path Prometheus scrapes on the first port; None: not scraped
    platforms: tuple[Platform, ...] = ("kubernetes", "docker", "local")
    local: LocalProgram | None = None  # None: not run by the local environment
    # Rendered by a component of its own (infra/components/<name>.py) with what only it needs; False: by
    # the generic renderers alone (infra/components/services.py), which is all a new service needs.
    bespoke: bool = False

    @property
    def host(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def port(self) -> int:
        return next(iter(self.ports.values()))

    def on(self, platform: Platform) -> bool:
        return platform in self.platforms


Builder = Callable[[EnvironmentSpec, Platform], Entry]


OTLP_ENDPOINT = f"http://{PREFIX}-jaeger:{OTLP_HTTP_PORT}"  # where the app sends traces (Jaeger's OTLP/HTTP)


def _app(spec: EnvironmentSpec, platform: Platform) -> Entry:
    return Entry(
        "app",
        spec.image or images.APP_REPOSITORY,
        {APP_PORT_NAME: spec.ports.app},
        spec.resources,
        replicas=spec.replicas,
        health="/health/ready",
        access=(Access(APP_PORT_NAME, ("gateway", "prometheus")),),
        env=spec_env(spec, "local") if platform == "local" else plain_env(spec, platform, OTLP_ENDPOINT),
        metrics="/metrics/prometheus",
        # Each replica runs its release's own command (codexops/localenv.py app_command).
        local=LocalProgram("{bin} serve", "codexops", program="app"),
        bespoke=True,
    )


def _gateway(spec: EnvironmentSpec, platform: Platform) -> Entry:
    return Entry(
        "gateway",
        images.NGINX,
        {"http": GATEWAY_HTTP, "https": GATEWAY_HTTPS},
        spec.gateway.resources,
        replicas=spec.gateway.replicas,
        uid=10101,  # nginx-unprivileged runs under any uid; a high one avoids host uids (checkov CKV_K8S_40)
        health="/health/ready",
        local=LocalProgram(
            "{bin} -c {dir}/nginx.conf -p {dir} -g 'daemon off;'",
            "nginx",
            program="nginx",
            stopsignal="QUIT",
            reloads=True,
        ),
        bespoke=True,
    )


def postgres_options(spec: EnvironmentSpec) -> tuple[str, ...]:
    """Only what differs from PostgreSQL's defaults: a server that keeps them keeps its pod template."""
    connections = spec.postgres.maxConnections
    return () if connections == POSTGRES_DEFAULT_MAX_CONNECTIONS else ("-c", f"max_connections={connections}")


def _postgres(spec: EnvironmentSpec, platform: Platform) -> Entry:
    options = postgres_options(spec)
    return Entry(
        "postgres",
        images.POSTGRES,
        {"postgres": POSTGRES_PORT},
        spec.postgres.resources,
        kind="statefulset",
        storage=spec.postgres.storage,
        data_path="/var/lib/postgresql/data",
        uid=70,  # the alpine image's postgres user
        access=(Access("postgres", ("app", "postgres-backup")),),
        local=LocalProgram(
            "{bin} -D {dir}/data -p {port} -k {dir} -c listen_addresses={host} -c unix_socket_permissions=0700"
            + "".join(f" {option}" for option in options),
            "postgres",
            autostart=True,
            stopsignal="INT",
            reloads=True,  # pg_hba.conf
            cluster=True,
        ),
        bespoke=True,
    )


def _redis(spec: EnvironmentSpec, platform: Platform) -> Entry:
    return Entry(
        "redis",
        images.REDIS,
        {"redis": REDIS_PORT},
        spec.redis.resources,
        kind="statefulset",
        storage=spec.redis.storage,
        data_path="/data",
        uid=10999,  # the image runs as any uid (the data is writable through fsGroup); a high one avoids host uids
        access=(Access("redis", ("app",)),),
        local=LocalProgram("{bin} {private}/redis.conf", "redis-server", autostart=True),
        bespoke=True,
    )


def _prometheus(spec: EnvironmentSpec, platform: Platform) -> Entry:
    o = spec.observability
    return Entry(
        "prometheus",
        images.PROMETHEUS,
        {"http": PROMETHEUS_PORT},
        o.prometheus.resources,
        storage=o.prometheus.storage,
        data_path="/prometheus",
        uid=65534,
        health="/-/ready",
        access=(Access("http", ("grafana",)),),
        # no --web.enable-lifecycle: reload is SIGHUP
        local=LocalProgram(
            "{bin} --config.file={dir}/prometheus.yml --storage.tsdb.path={dir}/data "
            "--web.listen-address={host}:{port}",
            "prometheus",
            reloads=True,
        ),
        bespoke=True,
    )


def _alertmanager(spec: EnvironmentSpec, platform: Platform) -> Entry:
    o = spec.observability
    return Entry(
        "alertmanager",
        images.ALERTMANAGER,
        {"http": ALERTMANAGER_PORT},
        o.alertmanager.resources,
        storage=o.alertmanager.storage,
        data_path="/alertmanager",
        uid=65534,
        health="/-/ready",
        access=(Access("http", ("prometheus",)),),
        # --cluster.listen-address= turns off clustering (no gossip port)
        local=LocalProgram(
            "{bin} --config.file={dir}/alertmanager.yml --storage.path={dir}/data "
            "--web.listen-address={host}:{port} --cluster.listen-address=",
            "prometheus-alertmanager",
            reloads=True,
        ),
        bespoke=True,
    )


def _grafana(spec: EnvironmentSpec, platform: Platform) -> Entry:
    o = spec.observability
    return Entry(
        "grafana",
        images.GRAFANA,
        {"http": GRAFANA_PORT},
        o.grafana.resources,
        storage=o.grafana.storage,
        data_path="/var/lib/grafana",
        uid=10472,  # any uid runs Grafana; a high one avoids host uids
        health="/api/health",
        env={
            "GF_AUTH_ANONYMOUS_ENABLED": "false",
            "GF_LOG_MODE": "console",  # the default file log cannot be written under a read-only root
        },
        platforms=("kubernetes", "docker"),
        bespoke=True,
    )


def _jaeger(spec: EnvironmentSpec, platform: Platform) -> Entry:
    o = spec.observability
    return Entry(
        "jaeger",
        images.JAEGER,
        {"http": JAEGER_UI_PORT, "otlp-http": OTLP_HTTP_PORT},
        o.jaeger.resources,
        access=(Access("otlp-http", ("app",)),),
        env={"COLLECTOR_OTLP_ENABLED": "true", "MEMORY_MAX_TRACES": str(o.jaegerMaxTraces)},
        platforms=("kubernetes", "docker"),
        bespoke=True,
    )


def _kube_state_metrics(spec: EnvironmentSpec, platform: Platform) -> Entry:
    return Entry(
        "kube-state-metrics",
        images.KUBE_STATE_METRICS,
        {"http": KSM_PORT},
        spec.observability.kubeStateMetrics.resources,
        health="/healthz",
        access=(Access("http", ("prometheus",)),),
        metrics="/metrics",
        platforms=("kubernetes",),
        bespoke=True,
    )


# The local environment starts its programs in this order (datastores first).
BUILDERS: tuple[Builder, ...] = (
    _app,
    _postgres,
    _redis,
    _gateway,
    _jaeger,
    _prometheus,
    _alertmanager,
    _grafana,
    _kube_state_metrics,
)


def catalogue(spec: EnvironmentSpec, platform: Platform | None = None) -> tuple[Entry, ...]:
    """Every service of the stack, as `platform` (default the spec's) runs it."""
    chosen: Platform = platform or spec.platform
    return tuple(build(spec, chosen) for build in BUILDERS)


def running(spec: EnvironmentSpec, platform: Platform | None = None) -> list[Entry]:
    """The services `platform` (default the spec's) runs."""
    chosen: Platform = platform or spec.platform
    return [e for e in catalogue(spec, chosen) if e.on(chosen)]


def entry(spec: EnvironmentSpec, name: str, platform: Platform | None = None) -> Entry:
    return next(e for e in catalogue(spec, platform) if e.name == name)


def docker_hosts(e: Entry) -> list[str]:
    """Its containers' names on Docker: living-codex-<name>, or one per replica (-1, -2, ...); the app's
    always carry the number."""
    if e.replicas == 1 and e.name != "app":
        return [e.host]
    return [f"{e.host}-{i + 1}" for i in range(e.replicas)]


def replica_hosts(spec: EnvironmentSpec, name: str = "app") -> list[str]:
    """Each container of a service on Docker (living-codex-app-1, ...): the checklist's hosts."""
    return docker_hosts(entry(spec, name, "docker"))


# -- NetworkPolicy paths ---------------------------------------------------------------------------------
Path = tuple[str, str, list[int], list[str]]  # (policy name, pods it selects, ports, peer components)

# The paths' Pulumi names from before the catalogue, kept so no policy is replaced: a name here, or a
# group of destinations one egress policy covers. A new service's paths are named <to>-from-<peers> and
# <from>-to-<to>.
INGRESS_NAMES = {"postgres": "postgres-from-app-and-backup"}
EGRESS_GROUPS = {
    "app": (("app-to-backends", ("postgres", "redis", "jaeger")),),
    "prometheus": (("prometheus-to-app-and-alertmanager", ("app", "alertmanager")),),
    "postgres-backup": (("backup-to-postgres", ("postgres",)),),
}


def _edges(entries: Iterable[Entry]) -> list[tuple[str, str, int]]:
    """(source, destination, port) for every peer of every entry, in catalogue order."""
    return [(peer, e.name, e.ports[a.port]) for e in entries for a in e.access for peer in a.peers]


def ingress_paths(spec: EnvironmentSpec) -> list[Path]:
    paths = []
    for e in running(spec, "kubernetes"):
        for a in e.access:
            name = INGRESS_NAMES.get(e.name, f"{e.name}-from-{'-and-'.join(a.peers)}")
            paths.append((name, e.name, [e.ports[a.port]], list(a.peers)))
    return paths


def egress_paths(spec: EnvironmentSpec) -> list[Path]:
    """The other end of each ingress path: one policy per source and destination, or per legacy group."""
    paths: list[Path] = []
    named: set[tuple[str, str]] = set()
    edges = _edges(running(spec, "kubernetes"))
    sources = list(dict.fromkeys(source for source, _, _ in edges))
    for source in sources:
        to = {destination: port for s, destination, port in edges if s == source}
        for name, group in EGRESS_GROUPS.get(source, ()):
            paths.append((name, source, [to[d] for d in group], list(group)))
            named |= {(source, d) for d in group}
        for destination, port in to.items():
            if (source, destination) not in named:
                paths.append((f"{source}-to-{destination}", source, [port], [destination]))
    return paths


# -- Prometheus --------------------------------------------------------------------------------------
def scrape_jobs(entries: Iterable[Entry], addresses: Callable[[Entry], list[str]]) -> list[tuple[str, list[str]]]:
    """(job, its host:port targets) of every scraped service but the app (whose job is render_prometheus')."""
    return [(e.name, addresses(e)) for e in entries if e.metrics and e.name != "app"]
