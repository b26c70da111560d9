"""Docker staging hygiene: every container is health-checked, restarted, bounded and unprivileged."""

from __future__ import annotations

from collections.abc import Iterable

from policies.core import CONTAINER, HIGH, MEDIUM, Props, resource_policy


@resource_policy(
    "docker-healthcheck",
    "Every container has a healthcheck.",
    MEDIUM,
    "Add healthcheck.tests (e.g. CMD wget -qO- http://127.0.0.1:PORT/health).",
    (CONTAINER,),
)
def healthcheck(resource_type: str, props: Props) -> Iterable[str]:
    if not (props.get("healthcheck") or {}).get("tests"):
        yield f"container {props.get('name')} has no healthcheck"


@resource_policy(
    "docker-restart-policy",
    "Every container restarts by itself.",
    MEDIUM,
    "Set restart: unless-stopped (or always).",
    (CONTAINER,),
)
def restart_policy(resource_type: str, props: Props) -> Iterable[str]:
    if props.get("restart") not in ("unless-stopped", "always", "on-failure"):
        yield f"container {props.get('name')} has restart policy {props.get('restart', 'no')}"


@resource_policy("docker-memory-limit", "Every container has a memory limit.", MEDIUM, "Set memory (MB).", (CONTAINER,))
def memory_limit(resource_type: str, props: Props) -> Iterable[str]:
    if not props.get("memory"):
        yield f"container {props.get('name')} has no memory limit"


@resource_policy(
    "docker-unprivileged",
    "No container is privileged or on the host network.",
    HIGH,
    "Remove privileged and network_mode: host; use the stack's network.",
    (CONTAINER,),
)
def unprivileged(resource_type: str, props: Props) -> Iterable[str]:
    if props.get("privileged"):
        yield f"container {props.get('name')} is privileged"
    if props.get("networkMode") == "host":
        yield f"container {props.get('name')} uses the host network"


POLICIES = [healthcheck, restart_policy, memory_limit, unprivileged]
