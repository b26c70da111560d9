"""The release door at `pulumi up`: a stack whose spec requires promotion evidence runs only a release
whose signed full gate is committed beside its desired state (codexops/releases/admission.py, the same
check `codexops sync|deploy|promote|rollback` make), or one its stack file records a break-glass for.

The stack is read from the resources' URNs (`urn:pulumi:<stack>::<project>::...`), which the engine
writes and the program cannot choose; the digest from the app's image reference; the release id from the
app's CODEX_RELEASE (it only names the evidence folder: the signed subject must be the image's digest).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ReportViolation, StackValidationArgs, StackValidationPolicy

from codexops.releases import admission
from policies.core import (
    APP,
    CONFIGMAP,
    CONTAINER,
    CRITICAL,
    DEPLOYMENT,
    MANDATORY,
    component,
    containers,
    docker_env,
)

EVIDENCE_POLICY = "release-has-committed-evidence"
URN_PREFIX = "urn:pulumi:"


def stack_of(urn: str) -> str | None:
    """The stack a resource belongs to, from its URN; None for a URN not of Pulumi's form."""
    if not urn.startswith(URN_PREFIX) or "::" not in urn:
        return None
    return urn[len(URN_PREFIX) :].split("::", 1)[0] or None


def _env_of_deployment(props: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The app container's environment: its ConfigMaps' (envFrom) and its own `env` values."""
    container = next(iter(containers(props)), {})
    env: dict[str, str] = {}
    for source in container.get("envFrom", []) or []:
        # An autonamed ConfigMap's new name is unknown at preview: then the app's own ConfigMap ("").
        name = (source.get("configMapRef") or {}).get("name")
        env.update(config_maps.get(str(name), {}) or config_maps.get("", {}))
    env.update({str(e.get("name")): str(e["value"]) for e in container.get("env", []) or [] if "value" in e})
    return env


def app_releases(resources: list[tuple[str, str, Mapping[str, Any]]]) -> Iterable[tuple[str, str, str]]:
    """(resource name, release id or "", image) of every app workload."""
    config_maps = {
        str(p.get("metadata", {}).get("name")): dict(p.get("data") or {}) for t, _, p in resources if t == CONFIGMAP
    }
    config_maps[""] = next(
        (dict(p.get("data") or {}) for t, _, p in resources if t == CONFIGMAP and component(p) == APP), {}
    )
    for type_, name, props in resources:
        if type_ == DEPLOYMENT and component(props) == APP:
            image = str(next(iter(containers(props)), {}).get("image", ""))
            yield name, _env_of_deployment(props, config_maps).get("CODEX_RELEASE", ""), image
        elif type_ == CONTAINER and str(props.get("name", "")).startswith(f"{APP}-"):
            yield name, docker_env(props).get("CODEX_RELEASE", ""), str(props.get("image", ""))


def violations(stack: str | None, name: str, release: str, image: str) -> Iterable[str]:
    if stack is None:
        yield f"{name}: its URN names no stack, so the evidence it needs cannot be known"
        return
    try:
        source = admission.required_source(stack)
        if source is None:
            return
        if not release:
            yield f"{name}: {stack} requires evidence from {source}, but the app names no release (CODEX_RELEASE)"
            return
        if "@sha256:" not in image:
            yield f"{name}: {stack} requires evidence of an exact digest, but the image {image!r} is not by digest"
            return
        admission.admit(stack, admission.named_release(release, image.rpartition("@")[2], image))
    except admission.NotAdmitted as refusal:
        yield f"{name}: {refusal}"


def _validate(args: StackValidationArgs, report: ReportViolation) -> None:
    urns = {r.name: r.urn for r in args.resources}
    resources = [(r.resource_type, r.name, r.props) for r in args.resources]
    for name, release, image in app_releases(resources):
        for message in violations(stack_of(urns[name]), name, release, image):
            report(message, None)


POLICIES = [
    StackValidationPolicy(
        name=EVIDENCE_POLICY,
        description="A stack whose spec requires promotion evidence runs only a release with its signed full "
        "gate committed under evidence/<stack>/<release>/, or a recorded break-glass.",
        validate=_validate,
        enforcement_level=MANDATORY,
        severity=CRITICAL,
        remediation_steps="Gate the release on the source stack and `codexops promote` it (which commits its "
        "evidence); in an emergency only, `codexops deploy <stack> --release <id> --break-glass REASON`.",
    )
]
