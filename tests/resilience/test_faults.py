"""Faults under load through nginx and two replicas (the local environment): what a client saw, and
that nothing acknowledged was lost. Each case writes its figures to reports/faults/<case>.json (CODEX_REPORTS_DIR moves it); the
README's table quotes them. Timings are recorded, not asserted (except a hang bound).

The AI-flood and leak cases set the replicas' environment whole (`up` replaces it); the others ask for
the default one (`default_environment`: a no-op when the replicas already run it), so any order works."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from codexops import http_client, localenv
from infra.spec import ROOT, EnvironmentSpec
from tests.resilience.load import Load, stored_ids
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300), pytest.mark.usefixtures("local_env")]
FIGURES = Path(os.environ.get("CODEX_REPORTS_DIR") or ROOT / "reports") / "faults"  # as the gate's reports
HANG_SECONDS = 5.0


@pytest.fixture
def default_environment(spec: EnvironmentSpec) -> None:
    localenv.up(spec, print)  # nothing restarts when the replicas already run without a case's settings


@pytest.fixture(scope="module")
def admin_token(local_env: None) -> str:
    return _login("admin", localenv.local_secrets()["ADMIN_PASSWORD"])


def _login(username: str, password: str) -> str:
    answer = httpx.post(
        f"{localenv.gateway_url()}/api/auth/login", json={"username": username, "password": password}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["accessToken"])


def _record(case: str, figures: dict[str, Any]) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{case}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(case, json.dumps(figures))


def _ready(port: int) -> bool:
    return http_client.get(f"http://{localenv.HOST}:{port}/health/ready", timeout=2).status_code == 200


def _redis_seen(state: str) -> bool:
    """Every replica reports Redis `state` ("down": the outage noticed; "up": back, the outage's writes copied)."""
    ports = localenv.local_stack().ports.apps
    return all(
        http_client.get(f"http://{localenv.HOST}:{p}/health", timeout=5).json()["redis"]["status"] == state
        for p in ports
    )


def _nothing_lost(load: Load) -> int:
    missing = load.acknowledged() - stored_ids(load.tag)
    assert not missing, f"{len(missing)} writes answered 2xx are not in PostgreSQL: {sorted(missing)[:5]}"
    return len(load.acknowledged())


def _process_tree(name: str) -> list[psutil.Process]:
    root = psutil.Process(localenv.supervisor().pid(name))
    return [root, *root.children(recursive=True)]


# -- a replica restarted ---------------------------------------------------------------------------
def test_a_replica_restarted_under_load_fails_no_request(admin_token: str, default_environment: None) -> None:
    with Load(admin_token, "fault-restart") as load:
        load.wait_answered(20, "the load under way")
        began = time.monotonic()
        localenv.supervisor().restart("app-1")  # SIGTERM, drain, exit; then a fresh process
        wait_until(lambda: _ready(localenv.local_stack().ports.apps[0]), 120, "app-1 ready")
        ready_after = time.monotonic() - began
        load.wait_answered(20, "both replicas serving again")
    _record("replica_restart", {**load.summary(), "restart_to_ready_s": round(ready_after, 2)})
    assert not load.failures(), load.failures()[:5]
    assert _nothing_lost(load) > 0


# -- Redis frozen ----------------------------------------------------------------------------------
def test_redis_frozen_then_back_keeps_logins_reads_writes_and_revocations(
    admin_token: str, default_environment: None
) -> None:
    frozen = _process_tree("redis")
    secrets = localenv.local_secrets()
    with Load(admin_token, "fault-redis") as load:
        load.wait_answered(20, "the load under way")
        for process in frozen:
            process.suspend()  # SIGSTOP: connections stay open, nothing answers
        try:
            wait_until(lambda: _redis_seen("down"), 60, "every replica notices the outage")
            token = _login("admin", secrets["ADMIN_PASSWORD"])  # a login during the outage
            me = http_client.get(
                f"{localenv.gateway_url()}/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            assert me.status_code == 200, me.text
            out = httpx.post(
                f"{localenv.gateway_url()}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            assert out.status_code == 204, out.text
            load.wait_tried(30, "the load through the outage")
        finally:
            for process in frozen:
                process.resume()
        outage = load.summary()
        wait_until(lambda: _redis_seen("up"), 60, "every replica has Redis back and copied the outage's writes")
        load.wait_answered(20, "the load after the outage")
    # The logout made during the outage holds afterwards on every replica, asked directly.
    for port in localenv.local_stack().ports.apps:
        answer = http_client.get(
            f"http://{localenv.HOST}:{port}/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 401, (port, answer.text)
    _record("redis_frozen", {**load.summary(), "outage_window": outage})
    assert not load.failures(), load.failures()[:5]
    assert load.slowest_s() < HANG_SECONDS
    assert _nothing_lost(load) > 0


# -- PostgreSQL restarted --------------------------------------------------------------------------
def test_postgresql_restarted_answers_503_or_success_and_loses_no_write(
    admin_token: str, default_environment: None
) -> None:
    with Load(admin_token, "fault-postgres") as load:
        load.wait_answered(20, "the load under way")
        began = time.monotonic()
        localenv.supervisor().restart("postgres")
        down_for = time.monotonic() - began
        load.wait_answered(20, "PostgreSQL back: reads and writes answered again")
    _record("postgres_restart", {**load.summary(), "restart_command_s": round(down_for, 2)})
    for outcome in load.failures():
        assert outcome.status == 503, outcome  # never 500, 502 or no answer
        assert outcome.retry_after and outcome.error and outcome.error != "not-json", outcome
    assert load.slowest_s() < HANG_SECONDS, load.slowest_s()
    assert _nothing_lost(load) > 0


# -- the AI queue flooded --------------------------------------------------------------------------
def _rss_mb(port: int) -> float:
    memory = http_client.get(f"http://{localenv.HOST}:{port}/health/memory", timeout=5).json()["memoryUsage"]
    return float(memory["rssMB"])


class _HeldExtractor(ThreadingHTTPServer):
    """A chat-completions endpoint (the part Ollama or vLLM plays) that answers no job until released.
    The replicas' single worker is then busy for as long as the flood lasts, however slowly this
    machine submits; with the built-in extractor a slow client let the worker keep up (300 of 300
    accepted once, in CI)."""

    daemon_threads = True
    CONCEPTS = ("glaciers", "rivers", "canyons")

    def __init__(self) -> None:
        super().__init__((localenv.HOST, 0), _HeldCompletion)
        self.released = threading.Event()
        self.calls = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{localenv.HOST}:{self.server_address[1]}/v1"


class _HeldCompletion(BaseHTTPRequestHandler):
    server: _HeldExtractor

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and request["messages"][-1]["role"] == "user"
        with self.server.lock:
            self.server.calls += 1
        self.server.released.wait(120)
        content = json.dumps(list(_HeldExtractor.CONCEPTS))
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def held_extractor() -> Iterator[_HeldExtractor]:
    server = _HeldExtractor()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()  # a replica still waiting gets its answer
        server.shutdown()
        server.server_close()


def test_a_flooded_ai_queue_refuses_with_429_and_completes_every_accepted_job(
    spec: EnvironmentSpec, held_extractor: _HeldExtractor
) -> None:
    capacity, workers = 4, 1
    app_env = {
        "AI_QUEUE_CAPACITY": str(capacity),
        "AI_WORKERS": str(workers),
        "AI_EXTRACTOR_URL": held_extractor.url,
        "AI_JOB_TIMEOUT_SECONDS": "300",  # the held jobs wait for the whole flood
    }
    localenv.up(spec, print, app_env)
    token = _login("admin", localenv.local_secrets()["ADMIN_PASSWORD"])
    headers = {"Authorization": f"Bearer {token}"}
    ports = localenv.local_stack().ports.apps
    before = {port: _rss_mb(port) for port in ports}

    # One pooled client: the held jobs wait out the flood, and the replicas' extractor gives up after 60 s.
    client = httpx.Client(base_url=localenv.gateway_url(), headers=headers, timeout=10)

    def submit(index: int) -> httpx.Response:
        text = f"Flood {index}: glaciers melt into rivers that carve canyons over millennia. " * 20
        return client.post("/api/ai/extract", json={"text": text})

    with client, ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(submit, range(300)))
    statuses = [a.status_code for a in answers]
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 429]
    assert set(statuses) <= {202, 429}, statuses
    # Each replica holds at most its queue plus the jobs its workers took out of it.
    assert 0 < len(accepted) <= len(ports) * (capacity + workers), len(accepted)
    for answer in refused:
        assert answer.json()["error"] == "queue_full" and int(answer.headers["retry-after"]) >= 1, answer.text

    def finished(location: str) -> bool:
        job = http_client.get(f"{localenv.gateway_url()}{location}", headers=headers, timeout=5).json()
        assert job["status"] != "failed", job
        if job["status"] != "completed":
            return False
        assert [c["term"] for c in job["result"]["concepts"]] == list(_HeldExtractor.CONCEPTS), job
        return True

    held_extractor.released.set()
    began = time.monotonic()
    for answer in accepted:
        wait_until(lambda loc=answer.headers["location"]: finished(loc), 60, "job completed")  # type: ignore[misc]
    assert held_extractor.calls == len(accepted)
    after = {port: _rss_mb(port) for port in ports}
    growth = {port: round(after[port] - before[port], 1) for port in ports}
    _record(
        "ai_flood",
        {
            "submitted": len(answers),
            "accepted": len(accepted),
            "refused_429": len(refused),
            "all_accepted_completed_s": round(time.monotonic() - began, 1),
            "rss_growth_mb": growth,
        },
    )
    assert all(g < 64 for g in growth.values()), growth


# -- the chaos leak --------------------------------------------------------------------------------
def _leak_alert_state() -> str | None:
    alerts = http_client.get(f"{localenv.prometheus_url()}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    states = {a["state"] for a in alerts if a["labels"]["alertname"] == "CodexMemoryLeakDetected"}
    return "firing" if "firing" in states else ("pending" if states else None)


def _leak_detected(port: int) -> bool:
    leaks = http_client.get(f"http://{localenv.HOST}:{port}/health/memory", timeout=5).json()["memoryLeaks"]
    return bool(leaks["detected"])


def test_the_chaos_leak_is_reported_alerts_and_clears(spec: EnvironmentSpec) -> None:
    # A short detection window so the test takes seconds, not minutes; the alert keeps its `for: 1m`.
    localenv.up(
        spec, print, {"CHAOS_LEAK_MB_PER_MIN": "120", "MEMORY_WINDOW_SAMPLES": "8", "MEMORY_LEAK_WARMUP_SECONDS": "10"}
    )
    detected = wait_until(
        lambda: all(_leak_detected(p) for p in localenv.local_stack().ports.apps), 60, "/health/memory leak"
    )
    fired = wait_until(lambda: _leak_alert_state() == "firing", 150, "CodexMemoryLeakDetected firing")
    localenv.up(spec, print)  # leak off
    cleared = wait_until(lambda: _leak_alert_state() is None, 90, "leak alert cleared")
    assert not any(_leak_detected(p) for p in localenv.local_stack().ports.apps)
    _record(
        "chaos_leak",
        {
            "detected_after_s": round(detected, 1),
            "firing_after_s": round(fired, 1),
            "cleared_after_s": round(cleared, 1),
        },
    )
