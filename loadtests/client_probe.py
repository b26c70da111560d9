"""The load generator's send lag, measured inside Locust: a probe greenlet asks the gevent hub to wake it
every PERIOD seconds and records how late it woke. Every user's next request is scheduled the same way
(constant_throughput sleeps until it is due), so a Locust process that is starved of CPU, or saturated by
its own users, starts its requests late by as much: the target rate is then missed by the client, not the
stack. The series goes to CODEX_LOAD_CLIENT_FILE as JSON when Locust quits; the gate judges it
(codexops/load_client.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gevent

PERIOD = 0.1  # s: ten probes a second, far more often than a user's 0.2 s between requests


class LagProbe:
    def __init__(self) -> None:
        self.began = time.monotonic()
        self.lags: list[tuple[float, float]] = []  # (seconds since start, ms late)

    def run(self) -> None:
        while True:
            due = time.monotonic() + PERIOD
            gevent.sleep(PERIOD)
            woke = time.monotonic()
            self.lags.append((round(woke - self.began, 2), round(max(0.0, woke - due) * 1000, 2)))

    def save(self, path: Path) -> None:
        body: dict[str, Any] = {"periodSeconds": PERIOD, "lagMs": self.lags}
        path.write_text(json.dumps(body))


def start(path: Path) -> LagProbe:
    """Probe from now on; `save` it to `path` when Locust quits (the caller's quitting listener)."""
    probe = LagProbe()
    gevent.spawn(probe.run)
    return probe
