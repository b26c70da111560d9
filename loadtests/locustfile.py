"""A realistic Living Codex user mix at the spec's target rate.

Environment: CODEX_TARGET_FILE (the target the gate resolved: its spec's thresholds and `load` section
apply) or CODEX_STACK (default staging), CODEX_LOAD_SHAPE (smoke, gate, soak, spike), CODEX_LOAD_SCALE
(stretch the shape), CODEX_LOAD_USERNAME / CODEX_LOAD_PASSWORD (an editor), CODEX_LOAD_CLIENT_FILE (where
the generator's own send lag goes, loadtests/client_probe.py). Every user runs at constant
throughput (targetRps / users tasks per second) and each class's share of the users is the spec's
`load.mix`. Exit code 1 when a critical threshold is crossed (missing the target rate included, when
the spec makes that critical).
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import FastHttpUser, LoadTestShape, constant_throughput, events, task
from locust.env import Environment

from infra.spec import EnvironmentSpec, load_spec
from loadtests import client_probe
from loadtests.shapes import per_user_rate, ramp_seconds, stages
from loadtests.thresholds import Measurement, judge, steady_rps

STACK = os.environ.get("CODEX_STACK", "staging")
SHAPE = os.environ.get("CODEX_LOAD_SHAPE", "smoke")
SCALE = float(os.environ.get("CODEX_LOAD_SCALE", "1"))


def _spec() -> EnvironmentSpec:
    """The resolved target's spec when the gate passes one, else the stack's."""
    if os.environ.get("CODEX_TARGET_FILE"):
        from codexops.targets import Target

        return Target.load(Path(os.environ["CODEX_TARGET_FILE"])).spec
    return load_spec(STACK)


SPEC = _spec()
MIX = SPEC.load.mix
KNOWN_NODES: list[str] = []  # ids seen or created by this Locust process
LOGIN_ATTEMPTS = 5


class CodexUser(FastHttpUser):
    abstract = True
    wait_time = constant_throughput(per_user_rate(SPEC.load))

    def on_start(self) -> None:
        self.login()

    def login(self) -> None:
        """Log in; a 429 from the gateway's login limit (10 r/s per address) is waited out, then retried."""
        self.access, self.refresh_token = "", ""
        for _ in range(LOGIN_ATTEMPTS):
            with self.client.post(
                "/api/auth/login",
                name="/api/auth/login",
                catch_response=True,
                json={
                    "username": os.environ["CODEX_LOAD_USERNAME"],
                    "password": os.environ["CODEX_LOAD_PASSWORD"],
                },
            ) as response:
                if response.status_code == 429:
                    response.success()  # back-pressure by design, not a failure of the service
                    time.sleep(min(5.0, float(response.headers.get("Retry-After") or 1)))  # gevent-patched
                    continue
                tokens = response.json() if response.ok else {}
                self.access = tokens.get("accessToken", "")
                self.refresh_token = tokens.get("refreshToken", "")
                return

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    def known_node(self) -> str | None:
        return random.choice(KNOWN_NODES) if KNOWN_NODES else None


class Reader(CodexUser):
    """Browses the graph: lists, filters, single nodes, edges."""

    weight = round(100 * MIX.reader)

    @task(4)
    def browse(self) -> None:
        response = self.client.get(
            f"/api/nodes?limit=20&offset={random.randint(0, 40)}", headers=self.auth, name="/api/nodes"
        )
        if response.ok:
            KNOWN_NODES.extend(n["id"] for n in response.json()["items"][:5] if len(KNOWN_NODES) < 500)

    @task(3)
    def read_node(self) -> None:
        node = self.known_node()
        if node is None:  # every task makes a request, so the task rate is the request rate
            self.browse()
            return
        with self.client.get(
            f"/api/nodes/{node}", headers=self.auth, name="/api/nodes/{id}", catch_response=True
        ) as response:
            if response.status_code == 404:  # deleted by a writer meanwhile: expected
                response.success()

    @task(1)
    def filter_concepts(self) -> None:
        self.client.get("/api/nodes?typeId=codex.concept&limit=10", headers=self.auth, name="/api/nodes?typeId")

    @task(1)
    def edges(self) -> None:
        node = self.known_node()
        if node is None:
            self.browse()
            return
        self.client.get(f"/api/edges?fromId={node}", headers=self.auth, name="/api/edges")


class Writer(CodexUser):
    """Writes nodes and edges, updates and removes its own."""

    weight = round(100 * MIX.writer)

    def on_start(self) -> None:
        super().on_start()
        self.mine: list[str] = []

    @task(3)
    def create_node(self) -> None:
        node_id = f"load.{uuid.uuid4().hex[:12]}"
        response = self.client.post(
            "/api/nodes",
            headers=self.auth,
            name="/api/nodes [create]",
            json={
                "id": node_id,
                "typeId": "codex.note",
                "title": f"Load note {node_id}",
                "content": "Redis sessions survive outages; PostgreSQL keeps nodes and edges.",
                "state": "water",
            },
        )
        if response.status_code == 201:
            self.mine.append(node_id)
            KNOWN_NODES.append(node_id)

    @task(2)
    def link(self) -> None:
        if len(self.mine) < 2:
            self.create_node()
            return
        a, b = random.sample(self.mine, 2)
        with self.client.post(
            "/api/edges",
            headers=self.auth,
            name="/api/edges [create]",
            catch_response=True,
            json={"fromId": a, "toId": b, "role": "relates", "weight": 0.5},
        ) as response:
            if response.status_code == 409:  # the same link twice: expected
                response.success()

    @task(1)
    def update(self) -> None:
        if not self.mine:
            self.create_node()
            return
        self.client.put(
            f"/api/nodes/{random.choice(self.mine)}",
            headers=self.auth,
            name="/api/nodes/{id} [update]",
            json={"state": "ice"},
        )

    @task(1)
    def remove(self) -> None:
        if len(self.mine) <= 5:
            self.create_node()
            return
        node = self.mine.pop(0)
        self.client.delete(f"/api/nodes/{node}", headers=self.auth, name="/api/nodes/{id} [delete]")


class SessionUser(CodexUser):
    """Logs in, refreshes, checks itself, logs out."""

    weight = round(100 * MIX.session)

    @task(3)
    def refresh(self) -> None:
        response = self.client.post(
            "/api/auth/refresh", json={"refreshToken": self.refresh_token}, name="/api/auth/refresh"
        )
        if response.ok:
            self.access, self.refresh_token = response.json()["accessToken"], response.json()["refreshToken"]

    @task(3)
    def me(self) -> None:
        self.client.get("/api/auth/me", headers=self.auth, name="/api/auth/me")

    @task(1)
    def relogin(self) -> None:
        self.client.post("/api/auth/logout", headers=self.auth, name="/api/auth/logout")
        self.login()


class AIUser(CodexUser):
    """Submits concept extraction jobs and follows them."""

    weight = round(100 * MIX.ai)

    @task
    def extract(self) -> None:
        node = self.known_node()
        body: dict[str, Any] = {"nodeId": node} if node else {"text": "Graphs of concepts and sessions"}
        with self.client.post(
            "/api/ai/extract", headers=self.auth, json=body, name="/api/ai/extract", catch_response=True
        ) as response:
            if response.status_code in (404, 429):  # node deleted meanwhile; queue full is back-pressure
                response.success()
                return
        if response.status_code == 202:
            self.client.get(f"/api/ai/jobs/{response.json()['id']}", headers=self.auth, name="/api/ai/jobs/{id}")


class Monitor(FastHttpUser):
    """What Prometheus, load balancers and operators ask."""

    weight = round(100 * MIX.monitor)
    wait_time = constant_throughput(per_user_rate(SPEC.load))

    @task(3)
    def health(self) -> None:
        self.client.get("/health")

    @task(1)
    def memory(self) -> None:
        self.client.get("/health/memory")

    @task(1)
    def ai_pipeline(self) -> None:
        self.client.get("/health/ai-pipeline")

    @task(1)
    def metrics(self) -> None:
        self.client.get("/metrics/prometheus")


class CodexShape(LoadTestShape):
    """Follows the stages of CODEX_LOAD_SHAPE."""

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()  # type: ignore[no-untyped-call]
        for end, users, rate in stages(SHAPE, SPEC.load, SCALE):
            if elapsed < end:
                return users, rate
        return None


PROBE_FILE = os.environ.get("CODEX_LOAD_CLIENT_FILE")
PROBE = client_probe.start(Path(PROBE_FILE)) if PROBE_FILE else None


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _save_probe(**_: Any) -> None:
    if PROBE and PROBE_FILE:
        PROBE.save(Path(PROBE_FILE))


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _apply_thresholds(environment: Environment, **_: Any) -> None:
    total = environment.stats.total
    achieved = steady_rps(total.num_reqs_per_sec, ramp_seconds(SPEC.load)) if SHAPE == "gate" else None
    verdict = judge(Measurement.of_locust(total, achieved), SPEC.thresholds, SPEC.load)
    print(f"codex thresholds ({STACK}): {verdict.level}; " + ("; ".join(verdict.reasons) or "within limits"))
    if verdict.level == "critical":
        environment.process_exit_code = 1
