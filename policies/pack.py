"""Every policy of the pack, and the enforcement levels of each environment."""

from __future__ import annotations

import json
from pathlib import Path

from pulumi_policy import EnforcementLevel, Policy

from policies import alerting, docker, kubernetes, release, rollout, security, stack

ALL_POLICIES: list[Policy] = [
    *security.POLICIES,
    *kubernetes.POLICIES,
    *docker.POLICIES,
    *stack.POLICIES,
    *alerting.POLICIES,
    *release.POLICIES,
    *rollout.POLICIES,
]
CONFIG_DIR = Path(__file__).with_name("config")


def enforcement(environment: str) -> dict[str, EnforcementLevel]:
    """Levels from policies/config/<environment>.json, the file given to --policy-pack-config."""
    path = CONFIG_DIR / f"{environment.lower()}.json"
    levels = {p.name: p.enforcement_level or EnforcementLevel.MANDATORY for p in ALL_POLICIES}
    if path.exists():
        overrides = json.loads(path.read_text())
        default = overrides.pop("all", None)
        if default:
            levels = dict.fromkeys(levels, EnforcementLevel(default))
        for name, level in overrides.items():
            value = level["enforcementLevel"] if isinstance(level, dict) else level
            levels[name] = EnforcementLevel(value)
    return levels
