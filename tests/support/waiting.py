"""Waiting on a condition instead of a fixed sleep: as long as the machine needs, no longer."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

POLL = 0.2  # seconds between looks
PASSING = (httpx.HTTPError, KeyError, ValueError, OSError)  # a server or file between states: look again


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `predicate()` held; AssertionError naming `what` after `timeout` seconds. A look
    that raises one of PASSING (a replica restarting, a body without the key yet, a log not written yet) counts as not yet."""
    began = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - began
        except PASSING:
            pass
        if time.monotonic() - began >= timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(POLL)
