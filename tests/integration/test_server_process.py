"""`codexops serve` as a real process: SIGTERM, refusals (the runbook's commands: test_runbook.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port, wait_for_port

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
    thread = threading.Thread(target=lambda: slow.update(status=httpx.get(f"{base}/api/nodes", timeout=10).status_code))
    thread.start()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
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
