"""A replica shutting down leaves idle keep-alive connections to the client: a request still sent on
one is answered (Connection: close) instead of reset. nginx cannot retry a POST it has sent on a
connection the replica then resets; that was a 502 while a replica restarted under load."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support.gateway import ReplicaSettings, start_replica
from tests.support.servers import Postgres

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
REQUEST = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_request_on_an_idle_connection_during_shutdown_is_answered(tmp_path: Path, postgres: Postgres) -> None:
    postgres.recreate_database()
    replica = start_replica(tmp_path, ReplicaSettings(postgres.url), "app-drain")
    with socket.create_connection(("127.0.0.1", replica.port), timeout=10) as sock:
        sock.sendall(REQUEST)
        assert _response(sock).startswith(b"HTTP/1.1 200"), "first request"
        replica.process.send_signal(signal.SIGTERM)  # SHUTDOWN_DRAIN_SECONDS=0: the listener closes now
        deadline = time.monotonic() + 20
        while _listening(replica.port):
            assert time.monotonic() < deadline, "the listener did not close"
            time.sleep(0.05)
        time.sleep(0.3)  # past uvicorn's shutdown step that closed idle connections
        try:
            sock.sendall(REQUEST)  # what nginx does with a connection from its keep-alive pool
            answer = _response(sock)
        except ConnectionError as exc:
            answer = repr(exc).encode()
    replica.process.wait(timeout=40)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"connection: close" in answer.lower(), answer[:300]
