"""What the load generator could drive: its own CPU and run-queue wait (sampled from outside, from /proc)
and its send lag (loadtests/client_probe.py, from inside). When the client was starved, a missed rate or
a high latency says nothing about the stack: the load step is INCONCLUSIVE ("could not load the stack"),
not WARN or FAIL. Errors stay the stack's: a starved client does not make a server answer 5xx.

Starved means, over the steady part of the run (after the ramp):
- saturated: Locust used at least SATURATED_CPU % of its one core (gevent runs on one; Locust itself
  warns at 90 %), so it could not send faster whatever the stack did; or
- late: its requests started late, the probe's p95 send lag at least LATE_SHARE of the time between a
  user's requests (users / targetRps) and at least LATE_MIN_MS; or
- crowded out: it waited for a CPU (runnable, not running: /proc/PID/schedstat) at least WAITING % of
  the wall time. Locust needs little CPU (about 5 % of a core at 100 RPS), so a CPU hog beside it shows
  here first: each response it reads waits for a CPU, and that wait is in every latency it measures.
  Measured on a shared 2-core machine (load average 11-18 from other work): healthy full gates waited
  25-49 % (a busy loop pinned beside Locust: 47-49 %) and missed the rate (86-120 RPS of 150) or the
  p95 warning line; smoke runs 12-18 %; a stack slowed by CHAOS_LATENCY_MS=1300 under the same machine
  load 11 %, its client delivering what the stack took (the gate FAILed it).
A slow stack alone starves no client: its users wait on sockets, and the generator's CPU, lag and wait
stay low. A stack that burns the machine's CPU itself crowds the client out too; it then gets
INCONCLUSIVE, which is never promotion evidence either (codexops/releases/admission.py), and the gate
run again on a machine it does not crowd judges it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

SATURATED_CPU = 90.0  # % of one core
LATE_SHARE = 0.25  # of a user's period between requests
LATE_MIN_MS = 20.0
WAITING = 25.0  # % of the wall time runnable but waiting for a CPU
INTERVAL = 1.0  # s between CPU samples


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the generator started
    cpu_seconds: float  # user + system, cumulative
    wait_seconds: float  # runnable but waiting for a CPU (/proc/PID/schedstat), cumulative; 0 if unknown


@dataclass(frozen=True)
class ClientLoad:
    cpu_percent: float  # mean over the steady part, % of one core
    runqueue_percent: float  # share of the steady part spent waiting for a CPU
    lag_p50_ms: float
    lag_p95_ms: float
    lag_max_ms: float
    period_ms: float  # a user's time between requests
    starved: str  # why the client could not deliver, "" when it could

    def figures(self) -> dict[str, float | str]:
        return {k: v for k, v in asdict(self).items() if k != "starved" or v}


def _sample(process: psutil.Process, began: float) -> Sample:
    times = process.cpu_times()
    try:  # schedstat: ns on a CPU, ns waiting on a run queue, timeslices
        wait = int(Path(f"/proc/{process.pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        wait = 0.0
    return Sample(time.monotonic() - began, times.user + times.system, wait)


def run_measured(
    command: list[str], *, env: dict[str, str], cwd: Path, timeout: float, log: Path
) -> tuple[int, list[Sample]]:
    """Run the generator with its output in `log`, sampling its CPU every INTERVAL; TimeoutExpired when it
    outlives `timeout` (it is killed)."""
    samples: list[Sample] = []
    with log.open("w") as output:
        began = time.monotonic()
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sampler() -> None:
            try:
                process = psutil.Process(child.pid)
                while not done.is_set():
                    samples.append(_sample(process, began))
                    done.wait(INTERVAL)
            except psutil.Error:
                pass  # it ended between two samples

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise
        finally:
            done.set()
            thread.join()
    return code, samples


def _lags(probe_file: Path, steady_from: float) -> list[float]:
    try:
        lags = json.loads(probe_file.read_text())["lagMs"]
    except (OSError, ValueError, KeyError):
        return []
    return [float(ms) for at, ms in lags if at >= steady_from] or [float(ms) for _, ms in lags]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def assess(samples: list[Sample], probe_file: Path, steady_from: float, period_ms: float) -> ClientLoad:
    """The generator's figures over its steady part (from `steady_from` seconds) and whether it starved."""
    steady = [s for s in samples if s.at >= steady_from] or samples
    first, last = (steady[0], steady[-1]) if len(steady) >= 2 else (Sample(0, 0, 0), Sample(1, 0, 0))
    wall = max(last.at - first.at, 1e-9)
    cpu = 100 * (last.cpu_seconds - first.cpu_seconds) / wall
    runqueue = 100 * (last.wait_seconds - first.wait_seconds) / wall
    lags = _lags(probe_file, steady_from)
    p95 = _p95(lags)
    starved = ""
    if cpu >= SATURATED_CPU:
        starved = f"the load generator was saturated: {cpu:.0f} % of its CPU core (from {SATURATED_CPU:g} %)"
    elif lags and p95 >= max(LATE_MIN_MS, LATE_SHARE * period_ms):
        starved = (
            f"the load generator was starved: its requests started {p95:.0f} ms late (p95; a user sends every "
            f"{period_ms:.0f} ms), waiting for a CPU {runqueue:.0f} % of the time, at {cpu:.0f} % of a core"
        )
    elif runqueue >= WAITING:
        starved = (
            f"the load generator was starved: it waited for a CPU {runqueue:.0f} % of the time (from {WAITING:g} %; "
            f"the machine is contended), at {cpu:.0f} % of a core, its requests {p95:.0f} ms late (p95)"
        )
    median = statistics.median(lags) if lags else 0.0
    return ClientLoad(round(cpu, 1), round(runqueue, 1), round(median, 1), round(p95, 1),
                      round(max(lags, default=0.0), 1), round(period_ms, 1), starved)  # fmt: skip


def not_judged(status: str, reasons: list[str], errors_status: str, client: ClientLoad) -> tuple[str, list[str]]:
    """The load step's status and reasons once the client's figures are known. A load that passed stands;
    with a starved client, errors that fail on their own still FAIL, anything else is INCONCLUSIVE."""
    if not client.starved or status == "pass":
        return status, reasons
    if errors_status == "fail":
        return "fail", [*reasons, f"(also: {client.starved})"]
    verdicts = "; ".join(reasons)
    return "inconclusive", [f"could not load the stack: {client.starved}; not judged: {verdicts}"]
