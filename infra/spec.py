"""The environment spec: one typed object, built from a stack's Pulumi.<stack>.yaml, that drives every
environment (Pulumi components, nginx, Prometheus rules, Grafana, the local environment, the gate).

Importable without Pulumi running: it reads the stack file itself, the way the engine would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

NAMESPACE = "living-codex"
ROOT = Path(__file__).resolve().parent.parent
SECRET_KEYS = ("jwtSecret", "postgresPassword", "redisPassword", "grafanaPassword")


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


class Datastore(Model):
    mode: Literal["statefulset", "container", "external"] = "container"
    storage: str = "1Gi"
    externalHost: str | None = None
    tls: bool = False


class Shutdown(Model):
    drainSeconds: int = Field(5, ge=0)
    graceSeconds: int = Field(20, ge=1)


class Local(Model):
    """The stack's local environment (`codexops up --stack S`): its port range. Without portBase the
    stack uses the runbook's ports (gateway :5002); with it, gateway portBase, PostgreSQL +1, Redis +2,
    Prometheus +3, app replicas from +10 on."""

    portBase: int | None = Field(None, ge=1024, le=65000)


class EnvironmentSpec(Model):
    stack: str
    platform: Literal["docker", "kubernetes"]
    environment: Literal["Development", "Staging", "Production"] = "Staging"
    replicas: int = Field(2, ge=1, le=100)
    image: str = Field(min_length=1, description="pinned tag or digest; the policy pack enforces it")
    tls: bool = False
    domain: str = "localhost"
    namespace: str = Field("living-codex", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    kubernetesVersion: str = Field("1.30.0", pattern=r"^\d+\.\d+\.\d+$")
    tlsSecretName: str | None = None
    certIssuer: str = "letsencrypt"
    ports: Ports = Ports()
    resources: Resources = Resources()
    autoscaling: Autoscaling = Autoscaling()
    redis: Datastore = Datastore()
    postgres: Datastore = Datastore()
    shutdown: Shutdown = Shutdown()
    thresholds: Thresholds = Thresholds()
    local: Local = Local()
    secrets: dict[str, str] = Field(default_factory=dict, description="secret key -> ciphertext")
    plaintext_secrets: tuple[str, ...] = Field(
        (), description="secret keys set without --secret: the policy pack refuses such a stack"
    )

    @model_validator(mode="after")
    def _production_rules(self) -> EnvironmentSpec:
        if self.autoscaling.minReplicas > self.autoscaling.maxReplicas:
            raise ValueError("autoscaling: minReplicas is above maxReplicas")
        for name in ("redis", "postgres"):
            store: Datastore = getattr(self, name)
            if store.mode == "external" and not store.externalHost:
                raise ValueError(f"{name}: mode external needs externalHost")
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


def stack_file(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def available_stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _allowed_keys() -> list[str]:
    internal = ("stack", "secrets", "plaintext_secrets")
    return sorted(k for k in EnvironmentSpec.model_fields if k not in internal) + list(SECRET_KEYS)


def _from_config(stack: str, config: dict[str, Any], source: str) -> EnvironmentSpec:
    values: dict[str, Any] = {"stack": stack, "secrets": {}, "plaintext_secrets": ()}
    allowed = _allowed_keys()
    for full_key, value in config.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != NAMESPACE or key not in allowed:
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


def load_spec(stack: str, root: Path = ROOT) -> EnvironmentSpec:
    """The spec of `stack`, from Pulumi.<stack>.yaml at the repository root."""
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
    return _from_config(stack, config, path.name)
