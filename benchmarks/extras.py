"""The benchmark's other figures: the gate's duration split with RSS per replica under its load,
and how long each offline preview takes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from codexops import localenv
from infra.spec import ROOT

BIN = Path(sys.executable).parent
REPORTS = localenv.RUNTIME / "bench" / "reports"


def replica_pids() -> dict[str, int]:
    pids = {name: localenv.supervisor().pid(name) for name in ("app-1", "app-2")}
    return {name: pid for name, pid in pids.items() if pid > 0}


def rss_mb(pid: int) -> float:
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.Error:
        return 0.0


class RssSampler(threading.Thread):
    """Samples each replica's RSS every second until stopped."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: dict[str, list[float]] = {name: [] for name in pids}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for name, pid in self.pids.items():
                self.samples[name].append(rss_mb(pid))
            self.halt.wait(1.0)


def fresh_replicas(timeout: float = 60) -> None:
    """Restart both replicas and wait until they are ready: the gate then meets them as `make gate` does,
    not warmed up (and grown) by minutes of wrk, which the leak detector would rightly notice."""
    localenv.supervisor().restart("app-1", "app-2")
    for process in localenv.local_stack().processes:
        if process.name in ("app-1", "app-2"):
            localenv.wait_until(lambda p=process: localenv.healthy(p), process.name, timeout, print)  # type: ignore[misc]
    time.sleep(6)  # one Prometheus scrape interval (5 s): a scrape that failed during the restart is redone
    localenv.wait_until(localenv.replicas_scraped, "scrapes", timeout, print)


def gate_under_load() -> dict[str, Any]:
    fresh_replicas()
    pids = replica_pids()
    idle = {name: rss_mb(pid) for name, pid in pids.items()}
    sampler = RssSampler(pids)
    sampler.start()
    began = time.monotonic()
    result = subprocess.run(
        [str(BIN / "codexops"), "gate", "--target", "local", "--reports", str(REPORTS)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    total = time.monotonic() - began
    sampler.halt.set()
    sampler.join()
    after = {name: rss_mb(pid) for name, pid in pids.items()}
    reports = sorted(REPORTS.glob("*/report.json"))
    report = json.loads(reports[-1].read_text()) if reports else {}
    return {
        "freshReplicas": True,
        "exitCode": result.returncode,
        "verdict": report.get("verdict", "none"),
        "seconds": round(total, 1),
        "steps": {s["name"]: round(s["seconds"], 1) for s in report.get("steps", [])},
        "load": next((s["figures"] for s in report.get("steps", []) if s["name"] == "load"), {}),
        "reasons": [r for s in report.get("steps", []) for r in s.get("reasons", [])],
        "rssMB": {
            name: {"before": idle[name], "max": max(sampler.samples[name] or [0.0]), "after": after[name]}
            for name in pids
        },
    }


def previews() -> dict[str, dict[str, Any]]:
    timings = {}
    for stack in ("staging", "production"):
        began = time.monotonic()
        result = subprocess.run(
            [str(BIN / "codexops"), "preview", stack], capture_output=True, text=True, timeout=300, cwd=ROOT
        )
        timings[stack] = {"seconds": round(time.monotonic() - began, 1), "exitCode": result.returncode}
    return timings
