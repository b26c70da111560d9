"""One answer to "what is this target?": a stack name, `local` or a URL becomes its gateway URL, app
replicas, Prometheus, spec and kind. The gate resolves it once and hands the result (as JSON) to the
checklist and to Locust, so nothing downstream re-reads a stack by name.

With the local backend (codexops/backend_choice.py: `--local`, CODEX_BACKEND=local, or no Pulumi CLI
installed) a stack name means that stack's local environment; `local` is the default local stack.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from codexops.backend_choice import BackendUnavailable, backend_name
from infra.app_env import GATE_USERNAME
from infra.catalogue import replica_hosts
from infra.spec import EnvironmentSpec, SpecError, available_stacks, load_spec

Kind = Literal["local", "docker", "kubernetes", "url"]


class TargetError(ValueError):
    """The target cannot be resolved; the message says what is allowed."""


@dataclass(frozen=True)
class Target:
    name: str  # as asked: a stack, "local" or the URL
    kind: Kind
    url: str  # the gateway
    spec: EnvironmentSpec  # whose thresholds and settings apply
    prometheus_url: str | None
    tls: bool  # the gateway serves HTTPS (never for a local environment)
    app_urls: tuple[str, ...] = ()  # each replica, directly (local only)
    app_hosts: tuple[str, ...] = ()  # testinfra host specs of the replicas ("local://", "docker://…")
    app_processes: tuple[str, ...] = ()  # supervisor programs of the replicas (local only)
    log_paths: tuple[str, ...] = ()  # each replica's server.log, on its host
    admin_password: str | None = field(default=None, repr=False)  # local only (scripts/soak.py)
    # The gate's own editor (GATE_USERNAME/GATE_PASSWORD of the stack): what the load test logs in as.
    load_username: str | None = None
    load_password: str | None = field(default=None, repr=False)
    release: dict[str, str] | None = None  # {"id", "digest"} of the release served, when known
    alertmanager_url: str | None = None  # where the gate reads firing alerts (CODEX_ALERTMANAGER_URL when remote)

    @property
    def spec_digest(self) -> str:
        return spec_digest(self.spec)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["spec"] = self.spec.model_dump(mode="json")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        values = dict(data)
        values["spec"] = EnvironmentSpec(**data["spec"])
        for key in ("app_urls", "app_hosts", "app_processes", "log_paths"):
            values[key] = tuple(data.get(key, ()))
        return cls(**values)

    def save(self, path: Path) -> Path:
        """Written for the checklist and Locust; mode 0600, since it may carry the admin password."""
        path.touch(mode=0o600)
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> Target:
        return cls.from_json(json.loads(path.read_text()))


def spec_digest(spec: EnvironmentSpec) -> str:
    """sha256 of the spec's canonical JSON: the report names exactly which spec it judged."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def local_backend_selected(local: bool = False) -> bool:
    """Whether a stack name means its local environment: the release commands' rule, as a TargetError."""
    try:
        return backend_name(local) == "local"
    except BackendUnavailable as exc:
        raise TargetError(str(exc)) from None


def _spec(stack: str) -> EnvironmentSpec:
    try:
        return load_spec(stack)
    except SpecError as exc:
        raise TargetError(str(exc)) from None


def local_target(stack_name: str, asked: str, prometheus_url: str | None = None) -> Target:
    from codexops import localenv

    stack = localenv.local_stack(stack_name)
    known = stack.secrets_file.exists() or (stack.runtime / "secrets.env").exists()  # the latter: older versions'
    values = localenv.local_secrets(stack) if known else {}
    return Target(
        name=asked,
        kind="local",
        url=stack.gateway_url(),
        spec=stack.spec,
        prometheus_url=prometheus_url or stack.prometheus_url(),
        tls=False,
        app_urls=tuple(f"http://{localenv.HOST}:{port}" for port in stack.ports.apps),
        app_hosts=("local://",) * len(stack.apps),
        app_processes=stack.apps,
        log_paths=tuple(str(stack.app_log(app)) for app in stack.apps),
        admin_password=values.get("ADMIN_PASSWORD"),
        load_username=GATE_USERNAME if "GATE_PASSWORD" in values else None,
        load_password=values.get("GATE_PASSWORD"),
        release=served_release(localenv.read_state(stack)["releases"], stack.apps),
        alertmanager_url=stack.alertmanager_url(),
    )


def served_release(releases: dict[str, dict[str, Any]], apps: tuple[str, ...]) -> dict[str, str] | None:
    """The release every replica serves; None when they serve this checkout's code (no release)."""
    served = {(r["id"], r["digest"]) if (r := releases.get(app)) else None for app in apps}
    if served == {None}:
        return None
    if len(served) > 1:  # mid-deploy or a failed one: say so rather than pick one
        return {"id": "mixed: " + ", ".join(sorted(s[0] for s in served if s)), "digest": ""}
    (release_id, digest) = next(iter(served))  # type: ignore[misc]
    return {"id": release_id, "digest": digest}


def load_credentials() -> tuple[str | None, str | None]:
    """The gate's account for a remote target: CODEX_LOAD_USERNAME/PASSWORD, which the workflows read from
    the stack's outputs (pulumi stack output gatePassword --show-secrets), masked."""
    return os.environ.get("CODEX_LOAD_USERNAME") or None, os.environ.get("CODEX_LOAD_PASSWORD") or None


def gateway_url(spec: EnvironmentSpec) -> str:
    """Where a deployed stack's gateway answers: CODEX_GATEWAY_URL (the workflow's STAGING_URL, or the
    stack's `url` output) when set, else the stack's domain, as the program exports it."""
    return (os.environ.get("CODEX_GATEWAY_URL") or f"{'https' if spec.tls else 'http'}://{spec.domain}").rstrip("/")


def remote_target(stack: str, asked: str, prometheus_url: str | None) -> Target:
    spec = _spec(stack)
    hosts: tuple[str, ...] = ()
    if spec.platform == "docker":  # reached through DOCKER_HOST: the stack's docker:host (see the runbook)
        hosts = tuple(f"docker://{host}" for host in replica_hosts(spec))
    return Target(
        name=asked,
        kind=spec.platform,
        url=gateway_url(spec),
        spec=spec,
        prometheus_url=prometheus_url or os.environ.get("CODEX_PROMETHEUS_URL") or None,
        tls=spec.tls,
        app_hosts=hosts,  # Kubernetes pods are listed by the checklist when it runs (kubectl)
        log_paths=("/app/logs/server.log",) * len(hosts),
        admin_password=os.environ.get("CODEX_ADMIN_PASSWORD"),
        alertmanager_url=os.environ.get("CODEX_ALERTMANAGER_URL"),
        load_username=load_credentials()[0],
        load_password=load_credentials()[1],
    )


def resolve_target(
    name_or_url: str,
    *,
    stack: str | None = None,
    prometheus_url: str | None = None,
    local: bool = False,
) -> Target:
    """`local`, a stack name, or a URL (then `stack`, default staging, says whose thresholds apply)."""
    if name_or_url.startswith(("http://", "https://")):
        spec = _spec(stack or "staging")
        return Target(
            name=name_or_url,
            kind="url",
            url=name_or_url.rstrip("/"),
            spec=spec,
            prometheus_url=prometheus_url,
            tls=name_or_url.startswith("https://"),
            admin_password=os.environ.get("CODEX_ADMIN_PASSWORD"),
            alertmanager_url=os.environ.get("CODEX_ALERTMANAGER_URL"),
            load_username=load_credentials()[0],
            load_password=load_credentials()[1],
        )
    if name_or_url == "local":
        from codexops.localenv import DEFAULT_STACK

        return local_target(stack or DEFAULT_STACK, name_or_url, prometheus_url)
    if name_or_url not in available_stacks():
        raise TargetError(
            f"--target {name_or_url!r}: use local, a URL or a stack ({', '.join(available_stacks()) or 'none found'})"
        )
    if local_backend_selected(local):
        return local_target(name_or_url, name_or_url, prometheus_url)
    return remote_target(name_or_url, name_or_url, prometheus_url)
