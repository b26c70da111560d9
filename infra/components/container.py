"""A catalogue entry as a Docker container (staging): on the stack's network under its host name, its
pinned image, its memory limit, a health check, and a volume that outlives it where it keeps data. What a
service alone needs (a command, uploads, secret env) is passed in as extras."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from infra.catalogue import Entry
from infra.components.target import Target, child, docker_healthcheck, docker_network, megabytes, stateful


def health_check(entry: Entry) -> list[str]:
    """wget of the entry's health path on its first port (the images carry busybox wget), or a TCP check."""
    if entry.health:
        return ["CMD", "wget", "-qO-", f"http://127.0.0.1:{entry.port}{entry.health}"]
    return ["CMD-SHELL", f"nc -z 127.0.0.1 {entry.port}"]


def data_volume(parent: pulumi.Resource, target: Target, entry: Entry) -> docker.Volume:
    """Data outlives the container: retained, and protected in production."""
    return docker.Volume(f"{entry.name}-data", name=f"{entry.host}-data", opts=stateful(parent, target))


def container(
    parent: pulumi.Resource,
    target: Target,
    entry: Entry,
    *,
    name: str | None = None,
    host: str | None = None,
    image: pulumi.Input[str] | None = None,
    health: list[str] | None = None,
    volume: docker.Volume | None = None,
    **extra: Any,
) -> docker.Container:
    """The entry's container; `name`/`host` for one replica of several (app-1, living-codex-app-1)."""
    host = host or entry.host
    if volume is not None:
        extra["volumes"] = [{"volume_name": volume.name, "container_path": entry.data_path}]
    if entry.env and "envs" not in extra:
        extra["envs"] = [f"{k}={v}" for k, v in entry.env.items()]
    return docker.Container(
        name or entry.name,
        name=host,
        image=image if image is not None else target.pinned(entry.image),
        restart="unless-stopped",
        memory=megabytes(entry.resources.memoryLimit),
        networks_advanced=docker_network(target, host),
        healthcheck=docker_healthcheck(health or health_check(entry)),
        opts=child(parent),
        **extra,
    )
