"""Background load through the gateway for the fault tests: reads and writes from a few threads,
every answer recorded, so a test can count what a client saw and check nothing acknowledged is lost."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from codexops import localenv
from codexops.postgres_cluster import psql
from tests.support.waiting import wait_until

TIMEOUT = 10.0  # longer than any acceptable answer, so a hang shows up as a latency, not a guess


@dataclass(frozen=True)
class Outcome:
    kind: str  # "read" or "write"
    status: int  # 0: no HTTP answer (connection error or timeout)
    seconds: float
    retry_after: str | None
    error: str | None  # the JSON "error" code, when the body had one
    node_id: str | None  # a write answered 2xx: the id the client was promised


@dataclass
class Load:
    token: str
    tag: str
    threads: int = 6
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=TIMEOUT + 5)

    def _run(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=localenv.gateway_url(), headers=headers, timeout=TIMEOUT) as client:
            turn = 0
            while not self._stop.is_set():
                turn += 1
                self._record(client, "write" if (turn + index) % 2 else "read")

    def _record(self, client: httpx.Client, kind: str) -> None:
        began = time.monotonic()
        status, retry_after, error, node_id = 0, None, None, None
        try:
            if kind == "write":
                node = {"id": f"{self.tag}-{uuid.uuid4().hex}", "typeId": self.tag, "title": "fault load"}
                answer = client.post("/api/nodes", json=node)
                node_id = node["id"] if answer.is_success else None
            else:
                answer = client.get("/api/nodes", params={"typeId": self.tag, "limit": 5})
            status, retry_after = answer.status_code, answer.headers.get("retry-after")
            if not answer.is_success:
                error = _error_code(answer)
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        with self._lock:
            self.outcomes.append(Outcome(kind, status, time.monotonic() - began, retry_after, error, node_id))

    def wait_answered(self, count: int, what: str, timeout: float = 60) -> None:
        """Until `count` more requests were answered 2xx: the load is under way, or serving again."""
        goal = self._succeeded() + count
        wait_until(lambda: self._succeeded() >= goal, timeout, f"{count} answers 2xx: {what}")

    def wait_tried(self, count: int, what: str, timeout: float = 60) -> None:
        """Until `count` more requests ended, however answered: the load ran through a fault."""
        goal = len(self.outcomes) + count
        wait_until(lambda: len(self.outcomes) >= goal, timeout, f"{count} requests ended: {what}")

    def _succeeded(self) -> int:
        with self._lock:
            return sum(200 <= o.status < 300 for o in self.outcomes)

    # -- what the client saw -----------------------------------------------------------------------
    def statuses(self, kind: str | None = None) -> Counter[int]:
        return Counter(o.status for o in self.outcomes if kind is None or o.kind == kind)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not 200 <= o.status < 300]

    def acknowledged(self) -> set[str]:
        return {o.node_id for o in self.outcomes if o.node_id}

    def p95_ms(self, kind: str) -> float:
        times = sorted(o.seconds for o in self.outcomes if o.kind == kind and o.status)
        return 1000 * times[int(0.95 * (len(times) - 1))] if times else float("nan")

    def slowest_s(self) -> float:
        return max((o.seconds for o in self.outcomes), default=0.0)

    def summary(self) -> dict[str, object]:
        return {
            "requests": len(self.outcomes),
            "statuses": dict(self.statuses()),
            "failed": len(self.failures()),
            "acknowledged_writes": len(self.acknowledged()),
            "read_p95_ms": round(self.p95_ms("read"), 1),
            "write_p95_ms": round(self.p95_ms("write"), 1),
            "slowest_s": round(self.slowest_s(), 3),
        }


def _error_code(answer: httpx.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return "not-json"
    return str(body.get("error")) if isinstance(body, dict) else "not-json"


def stored_ids(tag: str) -> set[str]:
    """The node ids of this load that PostgreSQL holds, read from the database itself."""
    stack = localenv.local_stack()
    out = psql(stack.postgres_dir, stack.ports.postgres, f"SELECT id FROM nodes WHERE type_id = '{tag}'", "livingcodex")
    return set(out.split())
