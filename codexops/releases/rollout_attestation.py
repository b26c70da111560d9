"""The attestation of a canary rollout: an in-toto Statement v1 about the release digest the rollout moved
(or stopped), signed like a full gate's (codexops/releases/attestation.py), whatever the outcome: an
aborted rollout is evidence of why a release did not ship.

Its predicate lists each step as it ran: number, weight, the window analysed, the canary's and the
baseline's samples and figures (requests, error rate, p95, p99), the decision and its reasons; then the
outcome (PASSED, or ABORTED at step N with the reason), the release it was compared with, and the
analysis limits it was judged by. Written to <reports>/rollouts/<stack>-<UTC time>/ (a folder name
with no target prefix, so a workflow picking the last gate report never takes it for one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codexops.releases.attestation import statement, write_signed
from codexops.releases.model import Release
from infra.spec import EnvironmentSpec

ROLLOUT_PREDICATE_TYPE = "https://living-codex.dev/rollout/v1"
ROLLOUT = "rollout.json"  # the predicate, readable beside the statement


def predicate(
    spec: EnvironmentSpec, release: Release, baseline: str | None, rollout: dict[str, Any], at: datetime
) -> dict[str, Any]:
    steps = rollout.get("steps", [])
    aborted = rollout.get("outcome") == "ABORTED"
    return {
        "stack": spec.stack,
        "release": release.id,
        "baseline": baseline,
        "outcome": rollout.get("outcome"),
        "reason": rollout.get("reason", ""),
        "abortedAtStep": steps[-1]["step"] if aborted and steps else None,
        "plannedSteps": [{"weight": s.weight, "pause": s.pause} for s in spec.rollout.steps],
        "steps": steps,
        "analysis": spec.rollout.analysis.model_dump(),
        "hardLimits": {
            "p95LatencyMs": spec.thresholds.p95LatencyMs.critical,
            "errorRate": spec.thresholds.errorRate.critical,
        },
        "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def attest_rollout(
    reports: Path,
    spec: EnvironmentSpec,
    release: Release,
    baseline: str | None,
    rollout: dict[str, Any],
    say: Callable[[str], None],
    *,
    now: datetime | None = None,
) -> Path:
    """Write the rollout's statement (signed when the operator has a key); the folder it is in."""
    at = now or datetime.now(UTC)
    folder = reports / "rollouts" / f"{spec.stack}-{at.strftime('%Y%m%dT%H%M%SZ')}"
    folder.mkdir(parents=True, exist_ok=True)
    body = predicate(spec, release, baseline, rollout, at)
    (folder / ROLLOUT).write_text(json.dumps(body, indent=2, sort_keys=True))
    say(f"==> rollout {body['outcome']}: its attestation lists {len(body['steps'])} step(s): {folder}")
    write_signed(folder, statement(release.id, release.digest, body, ROLLOUT_PREDICATE_TYPE), say)
    return folder
