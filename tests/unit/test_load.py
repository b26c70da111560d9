"""The spec's load section, the shapes built from it and the rate judgement."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.spec import Load, LoadMix, Thresholds, load_spec
from loadtests.shapes import MAX_SPAWN_RATE, duration, per_user_rate, ramp_seconds, stages
from loadtests.thresholds import judge, steady_rps, steady_rps_from_history


def test_committed_stacks_have_a_load_section() -> None:
    for stack in ("staging", "production"):
        load = load_spec(stack).load
        assert load.targetRps > 0 and load.rampSeconds < load.durationSeconds


def test_load_refuses_a_ramp_longer_than_the_run_and_an_empty_mix() -> None:
    with pytest.raises(ValidationError, match="rampSeconds"):
        Load(durationSeconds=10, rampSeconds=10)
    with pytest.raises(ValidationError, match="mix"):
        Load(mix=LoadMix(reader=0, writer=0, session=0, ai=0, monitor=0))


def test_gate_shape_holds_the_target_after_a_ramp() -> None:
    load = Load(targetRps=120, users=24, rampSeconds=6, durationSeconds=40)
    assert stages("gate", load) == [(6, 24, MAX_SPAWN_RATE), (40, 24, MAX_SPAWN_RATE)]
    assert duration("gate", load) == 40 and duration("gate", load, 0.5) == 20
    assert per_user_rate(load) == 5.0
    crowded = Load(users=80, rampSeconds=2)  # users start at MAX_SPAWN_RATE a second: the ramp stretches
    assert ramp_seconds(crowded) == 80 / MAX_SPAWN_RATE and stages("gate", crowded)[0][0] == ramp_seconds(crowded)
    with pytest.raises(ValueError, match="unknown load shape"):
        stages("burst", load)


def test_missing_the_target_rate_is_a_breach_of_the_spec_level() -> None:
    ok = judge(Thresholds(), 100, 0.0, 1000, achieved_rps=95, load=Load(targetRps=100))
    assert ok.level == "pass"
    warn = judge(Thresholds(), 100, 0.0, 1000, achieved_rps=50, load=Load(targetRps=100))
    assert warn.level == "warning" and "achieved 50.0 RPS of the 100 RPS target" in warn.reasons[0]
    critical = judge(Thresholds(), 100, 0.0, 1000, achieved_rps=50, load=Load(targetRps=100, missedTarget="critical"))
    assert critical.level == "critical"


def test_steady_rate_leaves_out_the_ramp_and_the_last_second(tmp_path: Path) -> None:
    assert steady_rps({1: 10, 2: 50, 3: 100, 4: 100, 5: 7}, ramp_seconds=2) == 100
    history = tmp_path / "history.csv"
    rows = ["Timestamp,Name,Total Request Count"]
    rows += [f"{1000 + t},Aggregated,{max(0, t - 5) * 100 + t * 10}" for t in range(0, 31)]
    rows += ["1030,/api/nodes,5"]
    history.write_text("\n".join(rows) + "\n")
    assert steady_rps_from_history(history, ramp_seconds=5) == pytest.approx(110)
    assert steady_rps_from_history(tmp_path / "missing.csv", 5) is None
