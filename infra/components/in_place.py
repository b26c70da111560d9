"""A configuration file of a running Docker container, replaced in place for a canary step.

Docker uploads are fixed when a container is created: a new upload makes the provider replace the
container, which drops the gateway's connections and resets Prometheus' alert state. So the container keeps
the file it was created with (the serving replicas alone) and a pulumi-command writes a step's file into
it with `docker exec` and reloads the server (infra/reload_scripts.py). A new file runs the command again;
deleting it (the canary removed) puts the upload back and reloads, before the canary's container is
deleted, since it depends on it; a replaced container gets the file again (its id is a trigger).
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from infra.components.target import Target
from infra.providers import setting

DOCKER_CLI = "the docker CLI where `pulumi up` runs, reaching docker:host: a canary step reloads files with docker exec"


def reloaded_file(
    parent: pulumi.Resource,
    target: Target,
    name: str,
    container: docker.Container,
    content: str,
    scripts: tuple[str, str],  # (write and reload, restore): docker_file_reload, docker_file_restore
    after: list[pulumi.Resource],
) -> command.local.Command:
    docker_host = setting(target.spec, "docker:host")
    if DOCKER_CLI not in target.prerequisites:
        target.prerequisites.append(DOCKER_CLI)
    return command.local.Command(
        name,
        create=scripts[0],
        delete=scripts[1],
        stdin=content,
        environment={"DOCKER_HOST": docker_host} if docker_host else None,
        triggers=[container.id],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[container, *after], delete_before_replace=True),
    )
