"""The canary steps in order, and an abort that puts every request back on the serving release."""

from __future__ import annotations

import pytest

from codexops.rollout.analysis import Query
from codexops.rollout.driver import Progress, run_canary
from infra.spec import Rollout, RolloutStep, load_spec
from infra.weights import upstream_weights

STEPS = (RolloutStep(weight=10, pause="20s"), RolloutStep(weight=50, pause="20s"))
SPEC = load_spec("staging").model_copy(update={"rollout": Rollout(steps=STEPS)})


class Recorded:
    """A platform whose Prometheus answers the figures given per weight; it records what it was told."""

    def __init__(self, canary_p95_s: dict[int, float], starts: bool = True) -> None:
        self.canary_p95_s, self.starts = canary_p95_s, starts
        self.calls: list[str] = []
        self.weight = 0

    def start_canary(self, release_id: str, progress: Progress) -> str | None:
        self.calls.append("start")
        return None if self.starts else "it exited"

    def route(self, weight: int, progress: Progress) -> None:
        self.calls.append(f"route {weight}")
        self.weight = weight

    def stop_canary(self, progress: Progress) -> None:
        self.calls.append("stop")

    def query(self) -> Query:
        def answer(expression: str) -> float | None:
            canary = 'version="r2"' in expression
            if "histogram_quantile" in expression:
                return self.canary_p95_s[self.weight] if canary else 0.040
            if 'status=~"5.."' in expression:
                return 0.0
            return 10.0 * self.weight if canary else 1000.0

        return answer


def run(platform: Recorded) -> tuple[str, list[int], str]:
    slept: list[float] = []
    result = run_canary(platform, "r2", SPEC, lambda line: None, sleep=slept.append)
    return result.outcome, [s.step for s in result.steps], result.reason


def test_a_healthy_canary_passes_every_step_in_order() -> None:
    platform = Recorded({10: 0.042, 50: 0.041})
    outcome, steps, _ = run(platform)
    assert (outcome, steps) == ("PASSED", [1, 2])
    assert platform.calls == ["start", "route 10", "route 50"]  # the caller moves the replicas, then stops it


def test_a_slow_canary_is_aborted_at_the_first_step_and_traffic_goes_back() -> None:
    platform = Recorded({10: 0.400, 50: 0.400})
    outcome, steps, reason = run(platform)
    assert (outcome, steps) == ("ABORTED", [1])
    assert platform.calls == ["start", "route 10", "route 0", "stop"]
    assert "step 1 (10%) FAIL" in reason and "p95" in reason


def test_a_canary_that_cannot_start_never_gets_traffic() -> None:
    platform = Recorded({}, starts=False)
    outcome, steps, reason = run(platform)
    assert (outcome, steps, platform.calls) == ("ABORTED", [], ["start", "stop"])
    assert "did not start" in reason


@pytest.mark.parametrize(("weight", "replicas"), [(10, 2), (50, 2), (10, 3), (25, 4), (99, 1)])
def test_upstream_weights_give_the_canary_its_share(weight: int, replicas: int) -> None:
    w = upstream_weights(weight, replicas)
    assert w.canary / (w.canary + replicas * w.baseline) == pytest.approx(weight / 100)


def test_weight_zero_takes_the_canary_out() -> None:
    assert upstream_weights(0, 2).canary == 0
    with pytest.raises(ValueError):
        upstream_weights(101, 2)


def test_an_operators_interrupt_aborts_the_step_and_puts_every_request_back() -> None:
    platform = Recorded({10: 0.042, 50: 0.041})

    def interrupted(seconds: float) -> None:
        if platform.weight == 50:
            raise KeyboardInterrupt

    result = run_canary(platform, "r2", SPEC, lambda line: None, sleep=interrupted)
    assert (result.outcome, [s.step for s in result.steps]) == ("ABORTED", [1])
    assert result.reason == "step 2 (50%) aborted by the operator (interrupted)"
    assert platform.calls == ["start", "route 10", "route 50", "route 0", "stop"]
