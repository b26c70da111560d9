"""The environment spec: one typed object, built from a stack's Pulumi.<stack>.yaml, that drives every
environment (Pulumi components, nginx, Prometheus rules, Grafana, the local environment, the gate).

Importable without Pulumi running: `load_spec` reads the stack file itself, the way the engine would;
under Pulumi, infra/stack_config.py feeds `spec_from_config` what `pulumi.Config` holds (--config, ESC).
Keys of other namespaces (kubernetes:context, docker:host) are kept for the providers.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra.root import ROOT as ROOT  # re-exported: the modules that read the spec take it from here

NAMESPACE = "living-codex"
SECRET_KEYS = (
    "jwtSecret",
    "postgresPassword",
    "redisPassword",
    "grafanaPassword",
    "alertingSlackUrl",  # Slack incoming-webhook URL, for receivers with slackChannel
    "alertingSmtpPassword",  # SMTP password, for receivers with email
    "registryPassword",  # a token that reads the app's image (GHCR: read:packages), with `registry`
    "gatePassword",  # the gate's own account (GATE_USERNAME); generated unless given
    # A Docker stack's gateway certificate (PEM, chain included) and its key, with tls: Docker has no
    # cert-manager (infra/components/gateway.py docker_tls)
    "tlsCertificate",
    "tlsKey",
)
ALERTING_SECRETS = ("alertingSlackUrl", "alertingSmtpPassword")  # never generated: given or absent


class SpecError(ValueError):
    """A stack file is wrong; the message names the file, the key and what is allowed."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(Model):
    warning: float
    critical: float


class ModuleFailures(Model):
    warning: float = 0  # alert when failures > warning


class Thresholds(Model):
    p95LatencyMs: Threshold = Threshold(warning=500, critical=1000)
    errorRate: Threshold = Threshold(warning=0.01, critical=0.05)
    memoryUsagePercent: Threshold = Threshold(warning=80, critical=90)
    healthScore: Threshold = Threshold(warning=80, critical=60)  # lower is worse
    moduleFailures: ModuleFailures = ModuleFailures()

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        for name in ("p95LatencyMs", "errorRate", "memoryUsagePercent"):
            level: Threshold = getattr(self, name)
            if level.warning >= level.critical:
                raise ValueError(f"{name}: warning must be below critical")
        if self.healthScore.warning <= self.healthScore.critical:
            raise ValueError("healthScore: warning must be above critical (lower scores are worse)")
        return self


class Resources(Model):
    cpuRequest: str = "250m"
    cpuLimit: str = "1"
    memoryRequest: str = "256Mi"
    memoryLimit: str = "512Mi"

    @property
    def memory_limit_bytes(self) -> int:
        return quantity_bytes(self.memoryLimit) if self.memoryLimit else 0


class Autoscaling(Model):
    minReplicas: int = Field(3, ge=1)
    maxReplicas: int = Field(10, ge=1)
    cpuPercent: int = Field(70, ge=1, le=100)
    memoryPercent: int = Field(80, ge=1, le=100)


class Ports(Model):
    http: int = Field(80, ge=1, le=65535)
    https: int = Field(443, ge=1, le=65535)
    app: int = Field(5002, ge=1, le=65535)


def _resources(cpu_request: str, cpu_limit: str, memory_request: str, memory_limit: str) -> Resources:
    return Resources(cpuRequest=cpu_request, cpuLimit=cpu_limit, memoryRequest=memory_request, memoryLimit=memory_limit)


class Gateway(Model):
    replicas: int = Field(2, ge=1)
    resources: Resources = _resources("100m", "500m", "64Mi", "128Mi")
    trustedProxies: tuple[str, ...] = Field((), description="CIDRs whose X-Forwarded-For nginx trusts (real_ip)")


class Datastore(Model):
    mode: Literal["statefulset", "container", "external"] = "container"
    storage: str = "1Gi"
    externalHost: str | None = None
    tls: bool = False


class Offsite(Model):
    """Where each verified dump is copied off the cluster: an S3-compatible bucket (AWS S3, MinIO, R2, ...)
    written with the AWS CLI. The access key pair is a Kubernetes Secret made outside the stack (keys
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); `codexops preview` lists it as a prerequisite."""

    url: str = Field(pattern=r"^s3://[a-z0-9][-.a-z0-9]{1,62}(/.*)?$", description="s3://bucket/prefix")
    endpoint: str | None = Field(None, pattern=r"^https://", description="a non-AWS S3 endpoint")
    region: str = "us-east-1"
    secretName: str = "living-codex-backup-s3"


class Backup(Model):
    """pg_dump on a schedule into a volume claim of its own, keeping the newest `keep` dumps, each verified
    (pg_restore --list) and copied to `offsite`; `restoreCheckSchedule` restores the newest dump into a
    scratch server and checks it; an alert fires when no backup succeeded for `maxAgeHours`."""

    schedule: str = "0 3 * * *"
    storage: str = "10Gi"
    keep: int = Field(7, ge=1)
    offsite: Offsite | None = None
    restoreCheckSchedule: str = "30 4 * * 0"
    maxAgeHours: int = Field(26, ge=1, description="no successful backup for this long: CodexBackupMissing")


# PostgreSQL's own max_connections; the servers the program runs are told another value only when set.
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
# Connections the app's pools leave free: PostgreSQL's superuser_reserved_connections (3), the migration,
# the backup's pg_dump, the password sync (postStart) and an operator's psql.
RESERVED_CONNECTIONS = 8
POOL_CAP = 20  # what a replica keeps at most: a burst's concurrent reads (benchmarks/NOTES.md)


class PostgresSpec(Datastore):
    resources: Resources = _resources("250m", "1", "256Mi", "1Gi")
    backup: Backup = Backup()
    maxConnections: int = Field(
        POSTGRES_DEFAULT_MAX_CONNECTIONS, ge=20, le=5000, description="the server's (external: its own setting)"
    )
    poolPerReplica: int | None = Field(
        None, ge=1, le=100, description="connections each app replica keeps; default: a fair share, at most 20"
    )


class RedisSpec(Datastore):
    resources: Resources = _resources("100m", "500m", "128Mi", "256Mi")
    maxmemoryPercent: int = Field(75, ge=10, le=95, description="of the memory limit, leaving room for overhead")
    # A full Redis refuses writes (the app falls back to SQL) instead of evicting a token revocation.
    maxmemoryPolicy: Literal["noeviction", "volatile-lru", "allkeys-lru", "volatile-ttl"] = "noeviction"


class Service(Model):
    resources: Resources
    storage: str = ""  # a persistent volume claim of this size; empty for none


class Certificates(Model):
    """Certificate expiry alerts read cert-manager's metrics (its Service `cert-manager` on :9402)."""

    warningDays: int = Field(14, ge=1)
    criticalDays: int = Field(3, ge=1)


class Observability(Model):
    prometheus: Service = Service(resources=_resources("200m", "1", "512Mi", "2Gi"), storage="10Gi")
    prometheusRetention: str = "15d"
    grafana: Service = Service(resources=_resources("100m", "500m", "128Mi", "256Mi"), storage="1Gi")
    alertmanager: Service = Service(resources=_resources("50m", "200m", "64Mi", "128Mi"), storage="1Gi")
    jaeger: Service = Service(resources=_resources("100m", "500m", "256Mi", "512Mi"))
    jaegerMaxTraces: int = Field(20000, ge=100, description="bounds Jaeger's in-memory store")
    kubeStateMetrics: Service = Service(resources=_resources("50m", "200m", "64Mi", "128Mi"))
    certificates: Certificates = Certificates()


class Dns01(Model):
    """A cert-manager DNS-01 solver whose API token is a Secret in cert-manager's namespace."""

    provider: Literal["cloudflare", "digitalocean"]
    secretName: str
    secretKey: str = "api-token"


class Acme(Model):
    """The public ClusterIssuer the program declares (named certIssuer): ACME with DNS-01."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    server: str = "https://acme-v02.api.letsencrypt.org/directory"
    dns01: Dns01


class Shutdown(Model):
    drainSeconds: int = Field(5, ge=0)
    graceSeconds: int = Field(20, ge=1)


class EmailReceiver(Model):
    to: str = Field(min_length=3)
    sender: str = Field(min_length=3)
    smarthost: str = Field(pattern=r"^[^:\s]+:\d+$", description="host:port")
    username: str | None = None  # the password is the secret alertingSmtpPassword


class Receiver(Model):
    """Where Alertmanager sends alerts. URLs that are credentials (Slack) come from secrets."""

    name: str = Field(pattern=r"^[a-z0-9][-a-z0-9]*$")
    severities: tuple[Literal["warning", "critical"], ...] = ("warning", "critical")
    webhookUrl: str | None = Field(None, pattern=r"^https?://")
    slackChannel: str | None = None  # the URL is the secret alertingSlackUrl
    email: EmailReceiver | None = None

    @model_validator(mode="after")
    def _has_integration(self) -> Receiver:
        if not (self.webhookUrl or self.slackChannel or self.email):
            raise ValueError(f"receiver {self.name}: give webhookUrl, slackChannel or email")
        if self.name == "default":
            raise ValueError("receiver name 'default' is reserved for the default receiver")
        return self


class Alerting(Model):
    receivers: tuple[Receiver, ...] = ()
    # Alerts matching no receiver go here; unset, they stay in Alertmanager's API and UI only.
    defaultWebhookUrl: str | None = Field(None, pattern=r"^https?://")


class Registry(Model):
    """Where the app's image is pulled from and as whom: the pods' imagePullSecret and the Docker host's
    registry login. The password (a token that can only read packages) is the secret registryPassword."""

    server: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d+)?$", description="e.g. ghcr.io")
    username: str = Field(min_length=1)


class Local(Model):
    """The stack's local environment (`codexops up --stack S`): its port range. Without portBase the
    stack uses the runbook's ports (gateway :5002); with it, gateway portBase, PostgreSQL +1, Redis +2,
    Prometheus +3, Alertmanager +4, app replicas from +10 on. CODEX_PORT_BASE overrides it for every stack
    (codexops.localenv.stack_ports: the parallel tests)."""

    portBase: int | None = Field(None, ge=1024, le=65000)


class LoadMix(Model):
    """Each user class's share of the load (normalised); the classes are loadtests/locustfile.py's."""

    reader: float = Field(0.66, ge=0)
    writer: float = Field(0.16, ge=0)
    session: float = Field(0.04, ge=0)  # logins and refreshes meet the gateway's 10 r/s auth limit
    ai: float = Field(0.04, ge=0)
    monitor: float = Field(0.10, ge=0)


class Load(Model):
    """The gate's load: Locust holds targetRps (constant throughput) for durationSeconds.

    Missing the target (achieved below targetTolerance x targetRps) is a threshold breach of level
    missedTarget. Defaults: what 2 local replicas sustain on 2 shared cores, with headroom
    (benchmarks/RESULTS.md). smokeSeconds: how long a deploy's verification smoke (a fifth of the
    users) runs."""

    targetRps: float = Field(150, gt=0)
    durationSeconds: int = Field(45, ge=10)
    smokeSeconds: int = Field(20, ge=5, le=600)
    rampSeconds: int = Field(8, ge=1)
    users: int = Field(30, ge=1)
    mix: LoadMix = LoadMix()
    targetTolerance: float = Field(0.9, gt=0, le=1)
    missedTarget: Literal["warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _sane(self) -> Load:
        if self.rampSeconds >= self.durationSeconds:
            raise ValueError("load: rampSeconds must be below durationSeconds")
        if sum(self.mix.model_dump().values()) <= 0:
            raise ValueError("load.mix: at least one share must be above 0")
        return self


DURATION = re.compile(r"^(\d{1,6})(s|m)$")
MAX_PAUSE_SECONDS = 3600


class RolloutStep(Model):
    """One canary step: `weight` percent of real traffic goes to the new release for `pause`, then the
    step's analysis decides whether the rollout goes on or aborts."""

    weight: int = Field(ge=1, le=99, description="percent of requests sent to the canary")
    pause: str = Field("60s", pattern=DURATION.pattern, description="how long the step runs, e.g. 60s or 2m")

    @property
    def pause_seconds(self) -> int:
        match = DURATION.match(self.pause)
        assert match is not None  # the pattern checked it
        return int(match[1]) * (60 if match[2] == "m" else 1)

    @model_validator(mode="after")
    def _bounded(self) -> RolloutStep:
        if not 1 <= self.pause_seconds <= MAX_PAUSE_SECONDS:  # a deploy (and its lock) waits this long
            raise ValueError(f"rollout step pause {self.pause}: between 1s and {MAX_PAUSE_SECONDS // 60}m")
        return self


class Analysis(Model):
    """How a step's canary is judged against the release serving beside it (codexops/rollout/analysis.py;
    on Kubernetes the same queries in an Argo Rollouts AnalysisTemplate). The thresholds' critical levels are
    hard limits; the relative limits catch a regression below them."""

    maxRegressionPercent: float = Field(20, gt=0, description="canary p95/p99 may exceed the baseline's by this")
    # Latency buckets are 5, 10, 25, 50, 100 ms...: a quantile moves a bucket on little; below this is noise.
    minLatencyDeltaMs: float = Field(25, ge=0, description="a latency difference below this is noise")
    maxErrorRateIncrease: float = Field(0.01, ge=0, le=1, description="canary error rate minus the baseline's")
    minSamples: int = Field(50, ge=1, description="requests each side needs in a step, else INCONCLUSIVE")


class Rollout(Model):
    """Progressive delivery: the steps a new release goes through before it takes all traffic. No steps
    (the default): all replicas move at once (a rolling update), judged after. A stack with users of its
    own declares them (Pulumi.production.yaml); a step without enough traffic is INCONCLUSIVE and aborts,
    so a stack nobody uses declares `trafficRps`, which codexops sends through the gateway in each step."""

    steps: tuple[RolloutStep, ...] = ()
    trafficRps: float = Field(0, ge=0, le=500, description="rehearsal requests per second during each step")
    analysis: Analysis = Analysis()
    # Kubernetes: where the Argo Rollouts controller runs (its analysis queries the stack's Prometheus).
    controllerNamespace: str = Field("argo-rollouts", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

    @model_validator(mode="after")
    def _rising(self) -> Rollout:
        weights = [step.weight for step in self.steps]
        if weights != sorted(set(weights)):
            raise ValueError(f"rollout.steps: weights must rise step by step, got {weights}")
        return self


STACK_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$"
RELEASE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$"
ONE_LINE = r"^[^\x00-\x1f\x7f]+$"  # no newline or other control character


class DockerCanary(Model):
    """A canary step in progress on a Docker stack: one container of `release` (`image`) beside the serving
    ones, sent `weight` percent of requests by the gateway. Set by codexops for one `pulumi up` at a time
    (codexops/releases/docker_canary.py), never committed: the stack file is the desired state."""

    release: str = Field(pattern=RELEASE_PATTERN)
    image: str = Field(min_length=1, pattern=ONE_LINE)
    weight: int = Field(ge=0, le=99, description="percent of requests to the canary (0: started, no traffic)")


class Promotion(Model):
    """What a release needs before it may run on this stack: a signed full gate of its exact digest on
    the stack `from`, committed under evidence/<this stack>/<release>/ (codexops/releases/doors.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: str = Field(alias="from", pattern=STACK_PATTERN, description="the stack whose full gate is evidence")


class BreakGlass(Model):
    """An explicit override: `release` runs without its evidence, for `reason`, decided by `by`. Written
    by `codexops deploy|rollback --break-glass REASON`; removed by the next promotion with evidence."""

    release: str = Field(pattern=RELEASE_PATTERN)
    reason: str = Field(min_length=1, max_length=500, pattern=ONE_LINE)
    by: str = Field(min_length=1, max_length=100, pattern=ONE_LINE)


class EnvironmentSpec(Model):
    stack: str
    platform: Literal["docker", "kubernetes"]
    environment: Literal["Development", "Staging", "Production"] = "Staging"
    replicas: int = Field(2, ge=1, le=100)
    # The release the stack runs, repository@sha256:<digest>, written by promotion (the pipeline). None:
    # nothing promoted yet, and the program refuses to run (infra/program.py says what to do).
    image: str | None = Field(None, min_length=1, description="digest (or a tag a workflow pushes)")
    registry: Registry | None = Field(None, description="pull credentials for the app's image")
    # The desired state in Git: the release this stack runs (codexops sync/diff/promote). None: nothing
    # promoted to it yet.
    release: str | None = Field(None, pattern=RELEASE_PATTERN)
    # Evidence a release needs to run here (None: none, the stack where gates run); the override, if any.
    promotion: Promotion | None = None
    breakGlass: BreakGlass | None = None
    tls: bool = False
    domain: str = "localhost"
    # Host names the gateway serves; empty means just `domain`. Any other Host is refused.
    serverNames: tuple[str, ...] = ()
    namespace: str = Field("living-codex", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    kubernetesVersion: str = Field("1.30.0", pattern=r"^\d+\.\d+\.\d+$")
    clusterDomain: str = "cluster.local"
    # DNS egress goes to kube-dns pods (kube-system, k8s-app: kube-dns) and to NodeLocal DNSCache's
    # link-local address where it runs; "" when the cluster has no node-local cache.
    nodeLocalDns: str = Field("169.254.20.10/32", pattern=r"^$|^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")

    # Kubernetes: the cluster's pod network. NetworkPolicies let only the gateway (and Prometheus) reach
    # the app, so it trusts X-Forwarded-For from this range (TRUSTED_PROXIES): the gateway's pods live in it.
    # No default: a wrong range (another cluster's, kind's) lets pods spoof clients or throttles everyone.
    podNetwork: str | None = Field(None, description="the cluster's pod CIDR, as the cluster reports it")
    # Docker: the stack network's subnet; the gateway container is the only proxy on it.
    dockerSubnet: str = Field("172.30.0.0/24", description="the Docker network's subnet")
    tlsSecretName: str | None = None
    certIssuer: str = "letsencrypt"
    acme: Acme | None = Field(None, description="declare certIssuer with DNS-01; without it, a prerequisite")
    internalIssuer: str = "living-codex-internal-ca"
    certManagerNamespace: str = "cert-manager"
    ports: Ports = Ports()
    resources: Resources = Resources()
    autoscaling: Autoscaling = Autoscaling()
    gateway: Gateway = Gateway()
    redis: RedisSpec = RedisSpec()
    postgres: PostgresSpec = PostgresSpec()
    observability: Observability = Observability()
    shutdown: Shutdown = Shutdown()
    thresholds: Thresholds = Thresholds()
    alerting: Alerting = Alerting()
    local: Local = Local()
    load: Load = Load()
    rollout: Rollout = Rollout()
    canary: DockerCanary | None = None  # a rollout's step on Docker, set at run time (never in the file)
    secrets: dict[str, str] = Field(default_factory=dict, description="secret key -> ciphertext")
    plaintext_secrets: tuple[str, ...] = Field(
        (), description="secret keys set without --secret: the policy pack refuses such a stack"
    )
    providers: dict[str, Any] = Field(
        default_factory=dict, description="keys of other namespaces, e.g. kubernetes:context, docker:host"
    )

    @property
    def server_names(self) -> tuple[str, ...]:
        return self.serverNames or (self.domain,)

    @property
    def peak_app_replicas(self) -> int:
        """App replicas at most at once: the autoscaler's maximum on Kubernetes, else the replica count, and
        the one more a rollout runs (maxSurge 1 on Kubernetes, the canary replica elsewhere)."""
        return (self.autoscaling.maxReplicas if self.platform == "kubernetes" else self.replicas) + 1

    @property
    def database_pool_size(self) -> int:
        """Each replica's pool: poolPerReplica, else the server's connections shared by the replicas at
        their peak, at most POOL_CAP (0 when there are too few for one each; the spec refuses that)."""
        store = self.postgres
        fair = (store.maxConnections - RESERVED_CONNECTIONS) // self.peak_app_replicas
        return store.poolPerReplica or min(POOL_CAP, fair)

    def _check_connections(self) -> None:
        """Every replica's pool at the peak fits in the server's max_connections: past it, PostgreSQL
        refuses new connections ("too many clients") just when the autoscaler has added replicas for load."""
        peak, pool, limit = self.peak_app_replicas, self.database_pool_size, self.postgres.maxConnections
        needed = peak * max(pool, 1) + RESERVED_CONNECTIONS
        if needed > limit:
            raise ValueError(
                f"postgres: {peak} app replicas at peak * {max(pool, 1)} connections each + {RESERVED_CONNECTIONS} "
                f"reserved = {needed}, above maxConnections {limit}: lower postgres.poolPerReplica or the "
                "replicas (autoscaling.maxReplicas on Kubernetes), or raise postgres.maxConnections"
            )

    @model_validator(mode="after")
    def _production_rules(self) -> EnvironmentSpec:
        if self.autoscaling.minReplicas > self.autoscaling.maxReplicas:
            raise ValueError("autoscaling: minReplicas is above maxReplicas")
        self._check_connections()
        for name in ("redis", "postgres"):
            store: Datastore = getattr(self, name)
            if store.mode == "external" and not store.externalHost:
                raise ValueError(f"{name}: mode external needs externalHost")
        if self.platform == "kubernetes" and self.podNetwork is None:
            raise ValueError(
                f"podNetwork: set {NAMESPACE}:podNetwork to the cluster's pod CIDR (the app trusts X-Forwarded-For "
                "from it): kubectl get nodes -o jsonpath='{.items[*].spec.podCIDR}' shows each node's range, "
                "the cluster's --cluster-cidr (kube-controller-manager) the whole"
            )
        for key in ("podNetwork", "dockerSubnet"):
            if getattr(self, key) is None:  # Docker stacks have no pod network
                continue
            try:
                ipaddress.ip_network(getattr(self, key), strict=False)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}; give a CIDR like 10.244.0.0/16") from None
        if self.canary is not None and self.platform != "docker":
            raise ValueError(
                f"canary: {NAMESPACE}:canary is codexops' Docker rollout step; on {self.platform} the "
                "rollout engine (Argo Rollouts) runs the canary"
            )
        receivers = self.alerting.receivers
        if len({r.name for r in receivers}) != len(receivers):
            raise ValueError("alerting: receiver names must be unique")
        for secret, used in (
            ("alertingSlackUrl", any(r.slackChannel for r in receivers)),
            ("alertingSmtpPassword", any(r.email and r.email.username for r in receivers)),
        ):
            if used and secret not in self.secrets:
                raise ValueError(f"alerting: set the secret {NAMESPACE}:{secret} (pulumi config set --secret)")
        return self


def quantity_bytes(quantity: str) -> int:
    """Kubernetes memory quantities (512Mi, 1Gi, 500M) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?", quantity)
    if not match:
        raise ValueError(f"{quantity!r} is not a memory quantity like 512Mi")
    units = {
        None: 1,
        "K": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    return int(float(match.group(1)) * units[match.group(2)])


def repo_root() -> Path:
    """The repository whose stack files are the specs and the desired state: this checkout, or
    CODEX_REPO_DIR (codexops working on another clone; the tests' throw-away repositories)."""
    return Path(os.environ.get("CODEX_REPO_DIR") or ROOT)


STACK_NAME = re.compile(STACK_PATTERN.strip("^$"))  # Pulumi's stack names, never a path


def check_stack_name(stack: str) -> str:
    """`stack`, when it can name a stack (and so a file or folder of it); else a SpecError."""
    if not STACK_NAME.fullmatch(stack):
        raise SpecError(f"stack name {stack[:120]!r} is not a plain name (letters, digits, - _ .; at most 100)")
    return stack


def stack_file(stack: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / f"Pulumi.{check_stack_name(stack)}.yaml"


def available_stacks(root: Path | None = None) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (root or repo_root()).glob("Pulumi.*.yaml"))


def _allowed_keys() -> list[str]:
    internal = ("stack", "secrets", "plaintext_secrets", "providers")
    return sorted(k for k in EnvironmentSpec.model_fields if k not in internal) + list(SECRET_KEYS)


def spec_from_config(stack: str, config: Mapping[str, Any], source: str) -> EnvironmentSpec:
    """The spec from a stack's config map (full keys like `living-codex:replicas`); `source` names it in errors.

    A secret is `{"secure": ...}` when it was set with --secret; any other value is flagged as plaintext.
    """
    values: dict[str, Any] = {"stack": stack, "secrets": {}, "plaintext_secrets": (), "providers": {}}
    allowed = _allowed_keys()
    for full_key, value in config.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != NAMESPACE:  # another package's setting: kubernetes:context, docker:host, ...
            values["providers"][str(full_key)] = value
            continue
        if key not in allowed:
            raise SpecError(
                f"{source}: unknown key {full_key!r}; allowed: " + ", ".join(f"{NAMESPACE}:{k}" for k in allowed)
            )
        if key in SECRET_KEYS:
            if isinstance(value, dict) and set(value) == {"secure"}:
                values["secrets"][key] = value["secure"]
            else:  # kept so the program can run; the policy 'secrets-encrypted-in-config' refuses it
                values["secrets"][key] = str(value)
                values["plaintext_secrets"] += (key,)
        elif isinstance(value, dict) and "secure" in value:
            raise SpecError(f"{source}: {full_key} is encrypted but is not a secret setting")
        else:
            values[key] = value
    try:
        return EnvironmentSpec(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            problems.append(f"{NAMESPACE}:{key}: {error['msg']}" if key else error["msg"])
        raise SpecError(f"{source}: " + "; ".join(problems)) from None


_from_config = spec_from_config  # the earlier private name, still used by tests


def load_spec(stack: str, root: Path | None = None) -> EnvironmentSpec:
    """The spec of `stack`, from Pulumi.<stack>.yaml at the repository root (repo_root())."""
    path = stack_file(stack, root)
    if not path.exists():
        raise SpecError(f"{path.name} not found; stacks here: {', '.join(available_stacks(root)) or 'none'}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name} is not valid YAML: {exc}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise SpecError(f"{path.name} has no 'config:' map")
    if f"{NAMESPACE}:canary" in config:
        raise SpecError(
            f"{path.name}: {NAMESPACE}:canary is set by codexops during a rollout, for one `pulumi up` at a "
            "time; a committed file names the release every replica runs (living-codex:image): remove it"
        )
    return spec_from_config(stack, config, path.name)
