"""`codexops serve` as a real process: SIGTERM, refusals (the runbook's commands: test_runbook.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY

import httpx
import pytest

from codexops import http_client
from tests.support.servers import free_port, wait_for_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CODEXOPS = str(Path(sys.executable).with_name("codexops"))


def _environment(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "CHAOS_", "REDIS_"))}
    env.update(
        {
            "CODEX_URLS": f"http://127.0.0.1:{port}",
            "SQLITE_CONNECTION_STRING": f"Data Source={tmp_path}/ice_prod.db",
            "LOG_DIR": str(tmp_path / "logs"),
            "SHUTDOWN_DRAIN_SECONDS": "1",
        }
    )
    env.pop("CONNECTION_STRING", None)
    env.update(extra)
    return env


def _start(tmp_path: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [CODEXOPS, "serve"],
        cwd=tmp_path,
        env=_environment(tmp_path, port, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, timeout=30)
    return process


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    process = _start(tmp_path, port)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_sigterm_drains_then_finishes_in_flight_requests(tmp_path: Path) -> None:
    port = free_port()
    # The probe below must land inside the drain: 3 s, where 1 s left it only 0.7 s on a busy machine.
    process = _start(tmp_path, port, CHAOS_LATENCY_MS="1500", SHUTDOWN_DRAIN_SECONDS="3")
    base = f"http://127.0.0.1:{port}"
    probe = httpx.Client(base_url=base, timeout=10)
    assert probe.get("/health/ready").status_code == 200
    slow: dict[str, int] = {}
    thread = threading.Thread(
        target=lambda: slow.update(status=http_client.get(f"{base}/api/nodes", timeout=10).status_code)
    )
    thread.start()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    server_log = tmp_path / "logs" / "server.log"
    wait_until(lambda: "SIGTERM received: draining" in server_log.read_text(), 10, "the server starts draining")
    assert probe.get("/health/ready").status_code == 503  # draining, still serving
    probe.close()
    thread.join(timeout=10)
    assert slow["status"] == 401  # the in-flight request got its answer (no token), not a reset
    assert process.wait(timeout=30) == 0
    log = (tmp_path / "logs" / "server.log").read_text()
    assert "SIGTERM received: draining" in log
    assert re.search(r"graceful shutdown completed in \d+\.\d+ s", log)
    assert "module stopped: storage" in log


STRONG_JWT = "q7Vw-2LmZx9RtY4bNc8KjH3pFs6DgA1e"


@pytest.mark.parametrize(
    ("name", "secrets"),
    [
        ("JWT_SECRET", {"JWT_SECRET": ""}),
        ("JWT_SECRET", {"JWT_SECRET": "your-secure-jwt-secret-key"}),
        ("JWT_SECRET", {"JWT_SECRET": "too-short"}),
        ("JWT_SECRET", {"JWT_SECRET": "password1234567890password123456"}),  # issue 19: words and digits
        ("JWT_SECRET", {"JWT_SECRET": "your-secure-jwt-secret-key-2024!!"}),  # the default with a suffix
        ("ADMIN_PASSWORD", {"JWT_SECRET": STRONG_JWT, "ADMIN_PASSWORD": "admin"}),
        ("GATE_PASSWORD", {"JWT_SECRET": STRONG_JWT, "GATE_PASSWORD": "qwertyuiop1234567890"}),
    ],
)
def test_production_refuses_a_weak_secret(tmp_path: Path, name: str, secrets: dict[str, str]) -> None:
    env = _environment(tmp_path, free_port(), CODEX_ENVIRONMENT="Production", **secrets)
    result = subprocess.run([CODEXOPS, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{name} is " in result.stderr and "secrets.token_urlsafe" in result.stderr
    assert "Traceback" not in result.stderr
    assert all(value not in result.stderr for value in secrets.values() if len(value) > 8)  # never echoed


def test_a_taken_port_is_a_clear_error(tmp_path: Path, served: int) -> None:
    env = _environment(tmp_path, served)
    result = subprocess.run([CODEXOPS, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "address already in use" in (result.stdout + result.stderr).lower()


def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the replica closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


CLOSE = b"Connection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [  # issue 19: uvicorn answered these with a plain-text 400 before the app saw them
        (b"GET /api/nodes?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n" + CLOSE, 414, "uri_too_long"),
        (b"GET /health/live HTTP/1.1\r\nX-Big: " + b"b" * 100_000 + b"\r\n" + CLOSE, 431, "headers_too_large"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n" + CLOSE, 400, "bad_request"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400, "bad_request"),  # TLS to plain HTTP
        (b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 8000 + b"\r\n" + CLOSE, 200, None),  # allowed
    ],
)
def test_the_replicas_own_protocol_errors_are_json(
    served: int, request_bytes: bytes, status: int, code: str | None
) -> None:
    answered, headers, body = _exchange(served, request_bytes)
    assert answered == status, (headers, body[:200])
    assert headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff" and headers["x-request-id"]
    if code is not None:
        assert json.loads(body) == {"error": code, "message": ANY, "requestId": headers["x-request-id"]}


def test_a_refused_request_is_answered_while_the_client_still_sends(served: int) -> None:
    # 512 kB of URL: the replica refuses at 16 kB while the client is still sending the rest
    request = b"GET /api/nodes?q=" + b"a" * 512_000 + b" HTTP/1.1\r\nHost: x\r\n" + CLOSE
    for _ in range(20):
        answered, _, body = _exchange(served, request)
        assert answered == 414 and json.loads(body)["error"] == "uri_too_long"
