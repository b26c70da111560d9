"""Explicit providers configured from the stack: no resource goes to whatever kubectl context or Docker
host happens to be current on the machine running Pulumi."""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.spec import NAMESPACE, EnvironmentSpec

KUBERNETES_KEYS = {
    "context": "kubernetes:context",
    "kubeconfig": "kubernetes:kubeconfig",
    "cluster": "kubernetes:cluster",
}
DOCKER_KEYS = {"host": "docker:host", "ssh_opts": "docker:sshOpts", "registry_auth": "docker:registryAuth"}


class MissingDockerHost(pulumi.RunError):
    """A staging or production Docker stack without docker:host would land on the runner's own Docker."""


def setting(spec: EnvironmentSpec, full_key: str) -> Any:
    """A provider setting from the stack; an encrypted one is read through pulumi.Config as a secret."""
    value = spec.providers.get(full_key)
    if isinstance(value, dict) and "secure" in value:
        namespace, _, key = full_key.partition(":")
        return pulumi.Config(namespace).require_secret(key)
    return value


def registry_auth(spec: EnvironmentSpec) -> list[dict[str, Any]]:
    """The app image's registry login (living-codex:registry + the secret registryPassword), if any."""
    if spec.registry is None:
        return []
    password = pulumi.Config(NAMESPACE).require_secret("registryPassword")
    return [{"address": spec.registry.server, "username": spec.registry.username, "password": password}]


def kubernetes_provider(spec: EnvironmentSpec) -> k8s.Provider:
    args = {arg: setting(spec, key) for arg, key in KUBERNETES_KEYS.items() if key in spec.providers}
    return k8s.Provider("kubernetes", **args)


def docker_provider(spec: EnvironmentSpec, name: str = "docker") -> docker.Provider:
    """The Docker host the stack runs on, named by docker:host (e.g. ssh://deploy@staging-host)."""
    if "docker:host" not in spec.providers and spec.environment != "Development":
        raise MissingDockerHost(
            f"stack {spec.stack}: set docker:host (e.g. ssh://deploy@staging-host): without it `pulumi up` "
            "deploys to whatever Docker the machine running Pulumi has (a CI runner's is thrown away)"
        )
    args = {arg: setting(spec, key) for arg, key in DOCKER_KEYS.items() if key in spec.providers}
    if "registry_auth" not in args and spec.registry is not None:
        args["registry_auth"] = registry_auth(spec)
    return docker.Provider(name, **args)


def registry_provider(spec: EnvironmentSpec) -> docker.Provider:
    """Only reads image digests from registries: no Docker daemon is needed, or checked for."""
    return docker.Provider("registry", disable_docker_daemon_check=True, registry_auth=registry_auth(spec) or None)


def docker_config_json(spec: EnvironmentSpec) -> pulumi.Output[str] | None:
    """The `.dockerconfigjson` of a kubernetes.io/dockerconfigjson Secret: the pods' pull credentials."""
    if spec.registry is None:
        return None
    server, username = spec.registry.server, spec.registry.username
    password = pulumi.Config(NAMESPACE).require_secret("registryPassword")

    def render(secret: str) -> str:
        token = base64.b64encode(f"{username}:{secret}".encode()).decode()
        return json.dumps({"auths": {server: {"username": username, "password": secret, "auth": token}}})

    return pulumi.Output.secret(password.apply(render))
