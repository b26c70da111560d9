"""The spec's load section, the shapes built from it and the rate judgement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.spec import ROOT, Load, LoadMix, Thresholds, load_spec
from loadtests.shapes import MAX_SPAWN_RATE, duration, per_user_rate, ramp_seconds, stages
from loadtests.thresholds import LoadVerdict, Measurement, judge, steady_rps, steady_rps_from_history


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


def test_a_smoke_runs_a_fifth_of_the_users_for_the_specs_smoke_seconds() -> None:
    assert stages("smoke", Load(users=30)) == [(20, 6, MAX_SPAWN_RATE)]  # the default: 20 s
    assert stages("smoke", Load(users=15, smokeSeconds=10), 0.5) == [(5, 3, MAX_SPAWN_RATE)]
    with pytest.raises(ValidationError, match="smokeSeconds"):
        Load(smokeSeconds=2)


def test_missing_the_target_rate_is_a_breach_of_the_spec_level() -> None:
    ok = judge(Measurement(1000, 100, 0.0, achieved_rps=95), Thresholds(), Load(targetRps=100))
    assert ok.level == "pass"
    warn = judge(Measurement(1000, 100, 0.0, achieved_rps=50), Thresholds(), Load(targetRps=100))
    assert warn.level == "warning" and "achieved 50.0 RPS of the 100 RPS target" in warn.reasons[0]
    missed = Load(targetRps=100, missedTarget="critical")
    assert judge(Measurement(1000, 100, 0.0, achieved_rps=50), Thresholds(), missed).level == "critical"
    assert judge(Measurement(1000, 100, 0.0), Thresholds(), missed).level == "pass"  # no steady rate: not judged


def test_each_figure_is_judged_at_the_worse_level_it_passes() -> None:
    thresholds, load = Thresholds(), Load()  # p95 500/1000 ms, errors 1%/5%
    both = judge(Measurement(1000, 1200, 0.02), thresholds, load)
    assert both == LoadVerdict(
        "critical",
        ["p95 latency 1200 ms is above the critical 1000 ms", "error rate 2.00% is above the warning 1%"],
    )
    assert judge(Measurement(1000, 600, 0.0), thresholds, load).reasons == [
        "p95 latency 600 ms is above the warning 500 ms"
    ]
    assert judge(Measurement(0, 0, 0.0), thresholds, load).level == "critical"  # nothing answered


def test_the_gate_and_locust_give_the_same_measurement() -> None:
    stats = {"requests": 40, "failures": 2, "error_rate": 0.05, "p95_ms": 310.0, "p99_ms": 900.0}
    assert Measurement.of_stats(stats) == Measurement(40, 310.0, 0.05)
    assert Measurement.of_stats({**stats, "achieved_rps": 9.5}).achieved_rps == 9.5
    # Locust's own totals, as its quitting hook has them; in a process of its own: Locust patches the
    # standard library when imported (gevent).
    script = (
        "from locust.stats import RequestStats, StatsEntry\n"
        "from loadtests.thresholds import Measurement\n"
        "total = StatsEntry(RequestStats(), 'Aggregated', None)\n"
        "for ms in (100, 200, 310, 310):\n"
        "    total.log(ms, 0)\n"
        "total.log_error(RuntimeError('boom'))\n"
        "print(repr(Measurement.of_locust(total, 9.5)))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.strip() == repr(Measurement(4, 310, 0.25, 9.5))


def test_steady_rate_leaves_out_the_ramp_and_the_last_second(tmp_path: Path) -> None:
    assert steady_rps({1: 10, 2: 50, 3: 100, 4: 100, 5: 7}, ramp_seconds=2) == 100
    history = tmp_path / "history.csv"
    rows = ["Timestamp,Name,Total Request Count"]
    rows += [f"{1000 + t},Aggregated,{max(0, t - 5) * 100 + t * 10}" for t in range(0, 31)]
    rows += ["1030,/api/nodes,5"]
    history.write_text("\n".join(rows) + "\n")
    assert steady_rps_from_history(history, ramp_seconds=5) == pytest.approx(110)
    assert steady_rps_from_history(tmp_path / "missing.csv", 5) is None
