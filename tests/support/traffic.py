"""Steady reads through a gateway while something changes underneath (a deploy, a promotion)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import httpx


class Traffic:
    """GETs of `paths` in a loop from a few threads until stopped, on keep-alive connections as clients
    use them: every request counted, every failure kept (`is_failure` of the status, or no answer).

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
        self.requests = self.slow = 0
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
                        status = client.get(path, headers=self.headers).status_code
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

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
