"""What the load generator could drive (codexops/load_client.py, loadtests/client_probe.py): its CPU and
send lag measured on real processes, and the load step INCONCLUSIVE only when the client starved."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import gevent

from codexops.gate import EXIT_INCONCLUSIVE, GateReport, Step, verdict
from codexops.load_client import ClientLoad, Sample, assess, not_judged, run_measured
from loadtests.client_probe import LagProbe

PERIOD_MS = 200.0  # 30 users at 150 RPS: a user sends every 200 ms


def probe_file(tmp_path: Path, lags_ms: list[float]) -> Path:
    path = tmp_path / "client.json"
    path.write_text(json.dumps({"periodSeconds": 0.1, "lagMs": [[10 + i / 10, ms] for i, ms in enumerate(lags_ms)]}))
    return path


def cpu(percent: float, seconds: int = 40, waiting: float = 0.0) -> list[Sample]:
    """Samples of a generator using `percent` of a core, `waiting` % of the time on a run queue."""
    return [Sample(10.0 + i, i * percent / 100, i * waiting / 100) for i in range(seconds)]


def test_the_generators_cpu_is_measured_on_the_real_process(tmp_path: Path) -> None:
    spin = [sys.executable, "-c", "import time\nend = time.monotonic() + 2.5\nwhile time.monotonic() < end: pass"]
    code, samples = run_measured(spin, env={}, cwd=tmp_path, timeout=20, log=tmp_path / "spin.log")
    busy = assess(samples, tmp_path / "none.json", 1, PERIOD_MS)
    # A spinning process is always runnable: on a CPU or waiting for one, whatever else the machine runs
    # (its CPU share alone is the machine's to give: 7 % once, niced beside five stack shards).
    assert code == 0 and len(samples) >= 3 and busy.cpu_percent > 0
    assert 70 < busy.cpu_percent + busy.runqueue_percent < 110, busy
    idle = [sys.executable, "-c", "import time; time.sleep(2.5)"]
    _, samples = run_measured(idle, env={}, cwd=tmp_path, timeout=20, log=tmp_path / "idle.log")
    sleeping = assess(samples, tmp_path / "none.json", 0, PERIOD_MS)
    assert sleeping.cpu_percent < 10 and sleeping.cpu_percent + sleeping.runqueue_percent < 50, sleeping


def test_the_probe_sees_a_blocked_hub_as_send_lag(tmp_path: Path) -> None:
    probe = LagProbe()
    runner = gevent.spawn(probe.run)
    gevent.sleep(0.35)
    end = time.monotonic() + 0.4
    while time.monotonic() < end:  # the hub cannot wake anyone: every due request would start late
        pass
    gevent.sleep(0.25)
    runner.kill()
    probe.save(tmp_path / "client.json")
    lags = [ms for _, ms in json.loads((tmp_path / "client.json").read_text())["lagMs"]]
    assert max(lags) >= 250 and min(lags) < 50


def test_a_client_with_cpu_to_spare_and_no_lag_is_not_starved(tmp_path: Path) -> None:
    client = assess(cpu(45), probe_file(tmp_path, [1.0] * 300 + [30.0] * 5), 10, PERIOD_MS)
    assert not client.starved and client.cpu_percent == 45 and client.lag_p95_ms < 5


def test_a_saturated_client_is_starved(tmp_path: Path) -> None:
    client = assess(cpu(97), probe_file(tmp_path, [3.0] * 300), 10, PERIOD_MS)
    assert "saturated: 97 % of its CPU core" in client.starved


def test_a_client_whose_requests_start_late_is_starved_whatever_its_cpu(tmp_path: Path) -> None:
    # A CPU hog beside it: Locust waits for a CPU, uses little, and wakes its users 80 ms late.
    client = assess(cpu(35, waiting=60), probe_file(tmp_path, [80.0] * 300), 10, PERIOD_MS)
    assert "started 80 ms late" in client.starved and "waiting for a CPU 60 %" in client.starved


def test_a_client_crowded_out_of_the_cpu_is_starved(tmp_path: Path) -> None:
    # Figures of a healthy full gate on the shared machine: little CPU, small lag, waiting half the time.
    client = assess(cpu(5.2, waiting=49.4), probe_file(tmp_path, [5.8] * 280 + [33.0] * 20), 10, PERIOD_MS)
    assert "waited for a CPU 49 % of the time" in client.starved
    assert not assess(cpu(5.2, waiting=12), probe_file(tmp_path, [1.0] * 300), 10, PERIOD_MS).starved


def test_only_the_steady_part_is_judged(tmp_path: Path) -> None:
    # The ramp (before second 10 in probe_file's clock) is late; the steady part is not.
    path = tmp_path / "client.json"
    ramp = [[i / 10, 500.0] for i in range(50)]
    path.write_text(json.dumps({"lagMs": [*ramp, *[[10 + i / 10, 1.0] for i in range(300)]]}))
    assert not assess(cpu(40), path, 10, PERIOD_MS).starved


STARVED = ClientLoad(30, 60, 70, 80, 120, PERIOD_MS, "the load generator was starved: ...")
FED = ClientLoad(40, 1, 1, 2, 9, PERIOD_MS, "")
MISSED = ["achieved 130.1 RPS of the 150 RPS target (below 90% of it): the stack did not take the spec's load"]


def test_a_starved_client_makes_a_missed_rate_inconclusive_not_the_stacks_fault() -> None:
    status, reasons = not_judged("warn", MISSED, "pass", STARVED)
    assert status == "inconclusive" and reasons[0].startswith("could not load the stack: the load generator was")
    assert "not judged: achieved 130.1 RPS" in reasons[0]
    assert not_judged("fail", ["p95 latency 1500 ms is above the critical 1000 ms"], "pass", STARVED)[0] == (
        "inconclusive"
    )


def test_a_slow_stack_under_a_load_the_client_delivered_still_fails() -> None:
    assert not_judged("fail", ["p95 latency 1500 ms is above the critical 1000 ms"], "pass", FED)[0] == "fail"
    assert not_judged("warn", MISSED, "pass", FED) == ("warn", MISSED)


def test_errors_are_the_stacks_even_with_a_starved_client() -> None:
    status, reasons = not_judged("fail", ["error rate 9.00% is above the critical 5%"], "fail", STARVED)
    assert status == "fail" and reasons[-1].startswith("(also: the load generator was starved")


def test_a_passing_load_stands_with_a_starved_client() -> None:
    assert not_judged("pass", [], "pass", STARVED) == ("pass", [])


def test_inconclusive_ranks_below_fail_above_warn_and_has_its_own_exit_code() -> None:
    steps = {s: Step("x", s, 1.0) for s in ("pass", "warn", "fail", "inconclusive")}
    assert verdict([steps["warn"], steps["inconclusive"]]) == "INCONCLUSIVE"
    assert verdict([steps["fail"], steps["inconclusive"]]) == "FAIL"
    report = GateReport("local", "staging", "http://x", "t", "INCONCLUSIVE")
    assert report.exit_code == EXIT_INCONCLUSIVE == 3 != GateReport("l", "s", "u", "t", "FAIL").exit_code
