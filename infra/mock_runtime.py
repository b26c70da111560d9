"""Run the Pulumi program under Pulumi's mock runtime (no CLI, no cloud) and record what it declares.

The recorded inputs are what the engine would pass to providers and policies: camelCase keys,
numbers as floats (normalised here), secrets unwrapped.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.images import APP_REPOSITORY
from infra.program import Environment, build
from infra.spec import NAMESPACE, EnvironmentSpec

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
DOCKER_IMAGE = "docker:index/image:Image"
REGISTRY_IMAGE = "docker:index/getRegistryImage:getRegistryImage"
SERVICE = "kubernetes:core/v1:Service"


def stand_in_digest(*parts: str) -> str:
    """Stands for a digest the engine would get (a build, a registry lookup); marked as not real."""
    return "sha256:" + hashlib.sha256("offline-mock:".join(parts).encode()).hexdigest()


@dataclass
class DeclaredResource:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    parent: str  # URN of the parent; the stack's for top-level resources
    urn: str
    provider: str = ""  # the explicit provider reference (urn::id), empty for a default provider
    protect: bool = False
    retain_on_delete: bool = False
    dependencies: tuple[str, ...] = ()  # URNs given in depends_on
    secrets: tuple[str, ...] = ()  # inputs sent as Pulumi secrets (the engine lifts a nested one to its property)


@dataclass
class Declaration:
    spec: EnvironmentSpec
    resources: list[DeclaredResource] = field(default_factory=list)
    environment: Environment | None = None

    def of_type(self, type_: str) -> list[DeclaredResource]:
        return [r for r in self.resources if r.type == type_]

    def custom(self) -> list[DeclaredResource]:
        return [r for r in self.resources if r.custom]

    def one(self, type_: str, name: str) -> DeclaredResource:
        return next(r for r in self.resources if r.type == type_ and r.name == name)


def normalise(value: Any) -> Any:
    """Mock inputs carry numbers as floats; manifests and policies want the integers back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        metadata = outputs.get("metadata")
        if args.typ.startswith("kubernetes:") and isinstance(metadata, dict) and not metadata.get("name"):
            # Pulumi autonames it <name>-<random suffix>, new at each replacement: here a suffix from the
            # content, so a change of data is a new name, as it is for the engine.
            outputs["metadata"] = {**metadata, "name": f"{args.name}-{stand_in_digest(repr(args.inputs))[7:15]}"}
        if args.typ == RANDOM_PASSWORD:  # stands for the engine's generated value
            outputs["result"] = f"generated-{args.name}-" + "x" * 24
        if args.typ == SERVICE and (args.inputs.get("spec") or {}).get("type") == "LoadBalancer":
            # Stands for the address the cloud assigns (TEST-NET-3, a documentation range: not real).
            outputs["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
        if args.typ == DOCKER_IMAGE:  # a local build's image id
            outputs["repoDigest"] = stand_in_digest(args.name, str(args.inputs.get("imageName")))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == REGISTRY_IMAGE:  # the registry's answer for a published tag
            name = str(args.args.get("name"))
            return {"name": name, "sha256Digest": stand_in_digest(name)}, []
        return {}, []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: _Mocks, declaration: Declaration) -> None:
        super().__init__(mocks)
        self.declaration = declaration

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object, keep_unknowns=True)
            self.declaration.resources.append(
                DeclaredResource(
                    request.type,
                    request.name,
                    normalise(_unwrap(inputs)),
                    bool(request.custom),
                    request.parent,
                    response.urn,
                    request.provider,
                    bool(request.protect),
                    bool(request.retainOnDelete),
                    tuple(request.dependencies),
                    tuple(_secret_paths(inputs)),
                )
            )
        return response


_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's special-signature key for wrapped values
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # ...and its value for a secret


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """The paths of the values Pulumi sends as secrets (the engine encrypts them in the state)."""
    if isinstance(value, dict) and value.get(_SIG) == _SECRET_SIG:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _secret_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


def _unwrap(value: Any) -> Any:
    """Drop Pulumi's secret wrappers, keeping the values (as the engine passes them to policies)."""
    if isinstance(value, dict) and _SIG in value:
        return _unwrap(value.get("value"))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def with_release(spec: EnvironmentSpec) -> EnvironmentSpec:
    """`spec` as if a release had been promoted to it: a stand-in digest of the app's repository when the
    stack names no image yet (the real program refuses such a stack; see infra/program.py)."""
    if spec.image:
        return spec
    return spec.model_copy(update={"image": f"{APP_REPOSITORY}@{stand_in_digest('release', spec.stack)}"})


def declare(spec: EnvironmentSpec, *, unsupplied: tuple[str, ...] = ()) -> Declaration:
    """Evaluate the program for `spec` and return every resource it declares, in order.

    What the stack's ESC environment supplies (registryPassword, a Docker gateway's certificate and key)
    is stood in for unless the stack file sets it, or the key is in `unsupplied` (an ESC without it)."""
    declaration = Declaration(spec)
    asyncio.set_event_loop(asyncio.new_event_loop())  # Pulumi drives its own loop; give it a fresh one
    mocks = _Mocks()
    pulumi.runtime.set_mocks(
        mocks,
        project="living-codex",
        stack=spec.stack,
        preview=True,
        monitor=_RecordingMonitor(mocks, declaration),
    )
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    pulumi.runtime.config.set_all_config({})  # only this stack's config: none left from a stack declared before
    for key, value in spec.secrets.items():  # the engine would decrypt; the mock stands in for it
        plain = value if key in spec.plaintext_secrets else f"decrypted-{key}-by-the-engine"
        pulumi.runtime.set_config(f"{NAMESPACE}:{key}", plain)
    docker_tls = spec.platform == "docker" and spec.tls
    from_esc = (  # (key, needed, stand-in value)
        ("registryPassword", spec.registry is not None, "registry-password-from-the-esc-environment"),
        ("tlsCertificate", docker_tls, "tls-certificate-from-the-esc-environment"),
        ("tlsKey", docker_tls, "tls-key-from-the-esc-environment"),
    )
    for key, needed, value in from_esc:
        if needed and key not in spec.secrets and key not in unsupplied:
            pulumi.runtime.set_config(f"{NAMESPACE}:{key}", value)
    for key, value in spec.providers.items():  # kubernetes:context, docker:host, ...
        secure = isinstance(value, dict) and "secure" in value
        pulumi.runtime.set_config(key, f"decrypted-{key}-by-the-engine" if secure else value)

    def program() -> None:
        declaration.environment = build(spec)

    _sync_await(run_pulumi_func(program))
    return declaration
