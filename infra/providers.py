"""Explicit providers configured from the stack: no resource goes to whatever kubectl context or Docker
host happens to be current on the machine running Pulumi."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.spec import EnvironmentSpec

KUBERNETES_KEYS = {
    "context": "kubernetes:context",
    "kubeconfig": "kubernetes:kubeconfig",
    "cluster": "kubernetes:cluster",
}
DOCKER_KEYS = {"host": "docker:host", "ssh_opts": "docker:sshOpts", "registry_auth": "docker:registryAuth"}


def setting(spec: EnvironmentSpec, full_key: str) -> Any:
    """A provider setting from the stack; an encrypted one is read through pulumi.Config as a secret."""
    value = spec.providers.get(full_key)
    if isinstance(value, dict) and "secure" in value:
        namespace, _, key = full_key.partition(":")
        return pulumi.Config(namespace).require_secret(key)
    return value


def kubernetes_provider(spec: EnvironmentSpec) -> k8s.Provider:
    args = {arg: setting(spec, key) for arg, key in KUBERNETES_KEYS.items() if key in spec.providers}
    return k8s.Provider("kubernetes", **args)


def docker_provider(spec: EnvironmentSpec, name: str = "docker") -> docker.Provider:
    args = {arg: setting(spec, key) for arg, key in DOCKER_KEYS.items() if key in spec.providers}
    return docker.Provider(name, **args)
