"""The canary steps, driven by codexops where no engine does it (the local backend; Docker staging): each
step routes its share of real traffic to a canary replica, waits its pause, analyses the canary against
the replicas serving beside it, then goes on or aborts with every request back on the serving release.
Kubernetes runs the same steps and analysis under Argo Rollouts (infra/components/canary.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from codexops.rollout.analysis import Query, StepAnalysis, analyse_step
from infra.spec import EnvironmentSpec

Progress = Callable[[str], None]
HEARTBEAT = 15.0  # seconds between progress lines while a step runs


class CanaryPlatform(Protocol):
    """Where the canary runs: one replica of the new release beside the serving ones."""

    def start_canary(self, release_id: str, progress: Progress) -> str | None:
        """Start it and wait until it serves; the reason when it does not."""
        ...

    def route(self, weight: int, progress: Progress) -> None:
        """Send `weight` percent of requests to the canary (0: none), without failing one in flight."""
        ...

    def stop_canary(self, progress: Progress) -> None: ...

    def query(self) -> Query:
        """An instant query on the stack's Prometheus."""
        ...


@dataclass
class RolloutResult:
    outcome: Literal["PASSED", "ABORTED"]
    steps: list[StepAnalysis] = field(default_factory=list)
    reason: str = ""

    @property
    def aborted_at(self) -> int | None:
        return self.steps[-1].step if self.outcome == "ABORTED" and self.steps else None

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "steps": [s.as_dict() for s in self.steps]}


def wait(seconds: float, what: str, progress: Progress, sleep: Callable[[float], None]) -> None:
    left = seconds
    while left > 0:
        chunk = min(HEARTBEAT, left)
        sleep(chunk)
        left -= chunk
        if left > 0:
            progress(f"    {what}: {left:.0f} s left")


def run_canary(
    platform: CanaryPlatform,
    release_id: str,
    spec: EnvironmentSpec,
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutResult:
    """PASSED: every step's analysis passed (the canary still runs: the caller moves the replicas, then
    stops it). ABORTED: the canary is out of the upstream and stopped; the serving replicas never changed."""
    problem = platform.start_canary(release_id, progress)
    if problem:
        platform.stop_canary(progress)
        return RolloutResult("ABORTED", reason=f"the canary did not start: {problem}")
    result = RolloutResult("PASSED")
    steps = spec.rollout.steps
    number, weight = 0, 0
    try:
        for number, step in enumerate(steps, start=1):
            weight = step.weight
            platform.route(step.weight, progress)
            progress(f"  step {number}/{len(steps)}: {step.weight}% of requests to {release_id} for {step.pause}")
            wait(step.pause_seconds, f"step {number}", progress, sleep)
            window = f"{step.pause_seconds}s"
            analysis = analyse_step(
                platform.query(), release_id, number, step.weight, window, spec.thresholds, spec.rollout.analysis
            )
            result.steps.append(analysis)
            progress(f"  step {number}: {analysis.decision} {describe(analysis)}")
            if analysis.decision != "PASS":
                why = f"step {number} ({step.weight}%) {analysis.decision}: {'; '.join(analysis.reasons)}"
                return abort(platform, result, why, progress)
    except KeyboardInterrupt:  # the operator's abort (Ctrl-C): every request back, the canary removed
        return abort(platform, result, f"step {number} ({weight}%) aborted by the operator (interrupted)", progress)
    return result


def abort(platform: CanaryPlatform, result: RolloutResult, reason: str, progress: Progress) -> RolloutResult:
    """Every request back on the serving replicas, the canary stopped: nothing else changed."""
    platform.route(0, progress)
    platform.stop_canary(progress)
    result.outcome, result.reason = "ABORTED", reason
    return result


def describe(analysis: StepAnalysis) -> str:
    c, b = analysis.canary, analysis.baseline
    return (
        f"(canary {c.requests:.0f} requests, p95 {c.p95_ms} ms, errors {c.error_rate}; "
        f"baseline {b.requests:.0f} requests, p95 {b.p95_ms} ms, errors {b.error_rate})"
    )
