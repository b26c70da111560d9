"""Rehearsal traffic for a stack nobody uses: during each canary step codexops sends the spec's
`trafficRps` requests per second through the gateway, as the stack's gate account, so the analysis has
samples on both sides. A production stack's own users are its traffic (trafficRps 0)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

READ = "/api/nodes?limit=10"  # an authenticated read every replica serves (chaos applies to /api/)
WORKERS = 16


@dataclass
class Sent:
    requests: int = 0
    failed: int = 0  # no answer, or a 5xx


def _login(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    answer = client.post("/api/auth/login", json={"username": username, "password": password})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['accessToken']}"}


@contextmanager
def rehearsal_traffic(url: str, username: str, password: str, rps: float) -> Iterator[Sent]:
    """Send `rps` reads per second until the block ends; yields the running tally."""
    sent, stop, lock = Sent(), threading.Event(), threading.Lock()
    client = httpx.Client(base_url=url, timeout=10, limits=httpx.Limits(max_connections=WORKERS))
    headers = _login(client, username, password)

    def one() -> None:
        try:
            failed = client.get(READ, headers=headers).status_code >= 500
        except httpx.HTTPError:
            failed = True
        with lock:
            sent.requests += 1
            sent.failed += failed

    def pace(pool: ThreadPoolExecutor) -> None:
        began, count = time.monotonic(), 0
        while not stop.is_set():
            due = began + count / rps
            if time.monotonic() < due:
                stop.wait(due - time.monotonic())
                continue
            pool.submit(one)
            count += 1

    with ThreadPoolExecutor(WORKERS) as pool:
        pacer = threading.Thread(target=pace, args=(pool,), daemon=True)
        pacer.start()
        try:
            yield sent
        finally:
            stop.set()
            pacer.join()
    client.close()
