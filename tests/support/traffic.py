"""Steady reads through a gateway while something changes underneath (a deploy, a promotion)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import httpx

# What httpx says when a keep-alive connection closes before any byte of the answer: an nginx reload does
# that to idle connections (its old workers close them as they exit; 1 of 1,504 reads over 40 reloads,
# 2026-12-07), and a rollout reloads the gateway at each step.
CLOSED_UNANSWERED = "Server disconnected without sending a response"


class Traffic:
    """GETs of `paths` in a loop from a few threads until stopped, on keep-alive connections as clients
    use them: every request counted, every failure kept (`is_failure` of the status, or no answer).
    A GET whose reused connection closed before any answer is sent again once on a new connection, as
    HTTP/1.1 clients do (RFC 9112, 9.3.1; browsers do): counted in `resent`, a failure only if it fails
    again.

    Each thread pauses `interval` seconds between requests: steady, not flat out, since `make test` runs
    other shards on the same two cores and an unpaced loop would starve them (and the gates they judge)."""

    def __init__(
        self,
        url: str,
        paths: Sequence[str],
        *,
        headers: dict[str, str] | None = None,
        threads: int = 4,
        interval: float = 0.02,
        is_failure: Callable[[int], bool] = lambda status: status >= 500,
        slow_seconds: float | None = None,  # answers slower than this are counted in `slow`
    ) -> None:
        self.url, self.paths, self.headers, self.is_failure = url, paths, headers or {}, is_failure
        self.interval, self.slow_seconds = interval, slow_seconds
        self.requests = self.slow = self.resent = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                for path in self.paths:
                    began = time.monotonic()
                    try:
                        status = self._get(client, path)
                        failure = f"{path}: {status}" if self.is_failure(status) else None
                    except httpx.HTTPError as exc:
                        failure = f"{path}: {exc!r}"
                    slow = self.slow_seconds is not None and time.monotonic() - began > self.slow_seconds
                    with self._lock:
                        self.requests += 1
                        self.slow += slow
                        if failure:
                            self.failures.append(failure)
                    self._stop.wait(self.interval)

    def _get(self, client: httpx.Client, path: str) -> int:
        try:
            return client.get(path, headers=self.headers).status_code
        except httpx.RemoteProtocolError as exc:
            if CLOSED_UNANSWERED not in str(exc):
                raise
        with self._lock:
            self.resent += 1
        return client.get(path, headers=self.headers).status_code

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
