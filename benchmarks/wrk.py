"""One wrk run: its figures, and the CPU the load generator itself used (is it the bottleneck?)."""

from __future__ import annotations

import json
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk_report.lua")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # socket errors and non-2xx/3xx answers
    p50_ms: float
    p95_ms: float
    p99_ms: float
    wrk_cpu: float  # cores the wrk process used on average
    machine_busy: float  # share of all cores busy during the run (0..1)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# Cold reads cycle over this many nodes: three times a replica's default CACHE_MAX_ENTRIES (1000).
COLD_NODES = 3000
COLD_PREFIX = "bench.cold."
CREATE_TYPE = "bench.create"  # created nodes get their own type: the lists by codex.note keep their size


def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    mode: str = "get",
    rate: float = 0,
    headers: dict[str, str] | None = None,
    tag: str = "bench",
    cold_nodes: int = COLD_NODES,
) -> WrkResult:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(SCRIPT)]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    command.append(url)
    env = {
        "WRK_MODE": mode,
        "WRK_RATE": str(rate),
        "WRK_THREADS": str(threads),
        "WRK_TAG": tag,
        "WRK_COLD_NODES": str(cold_nodes),
        "WRK_CREATE_TYPE": CREATE_TYPE,
        "PATH": "/usr/bin",
    }
    before, busy_before = resource.getrusage(resource.RUSAGE_CHILDREN), _cpu_times()
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, env=env, check=True)
    after, busy_after = resource.getrusage(resource.RUSAGE_CHILDREN), _cpu_times()
    line = [x for x in result.stdout.splitlines() if x.startswith("{")][-1]
    data = json.loads(line)
    elapsed = data["duration_us"] / 1e6
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=elapsed,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        wrk_cpu=cpu / elapsed if elapsed else 0.0,
        machine_busy=busy,
    )
