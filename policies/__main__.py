"""Builds the policy pack for the Pulumi CLI: pulumi preview --policy-pack policies."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import ALL_POLICIES

PolicyPack(
    name="living-codex",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
    description="The Living Codex runbook's security checklist and production readiness",
)
