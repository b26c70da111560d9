"""The gateway on real nginx in front of two real replicas (free ports): an app's 503 reaches the
client and ejects no replica, unknown hosts are refused, nginx's own errors are JSON, and slow
clients are cut off by nginx and by the replicas."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codexops import http_client
from infra.render import SECURITY_HEADERS
from tests.support.gateway import Nginx, Replica, ReplicaSettings, start_nginx, start_replica
from tests.support.servers import Postgres, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def settings(postgres: Postgres) -> ReplicaSettings:
    postgres.recreate_database()
    return ReplicaSettings(postgres.url)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, settings: ReplicaSettings) -> Iterator[list[Replica]]:
    base = tmp_path_factory.mktemp("replicas")
    started = [start_replica(base / "app-1", settings, "app-1")]  # migrates first
    _wait_ready(started[0].url)
    started.append(start_replica(base / "app-2", settings, "app-2"))
    _wait_ready(started[1].url)
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, replicas: list[Replica]) -> Iterator[Nginx]:
    nginx = start_nginx(tmp_path_factory.mktemp("nginx"), [f"127.0.0.1:{r.port}" for r in replicas])
    try:
        yield nginx
    finally:
        nginx.stop()


@pytest.fixture(scope="module")
def token(gateway: Nginx, settings: ReplicaSettings) -> str:
    answer = httpx.post(
        f"{gateway.url}/api/auth/login", json={"username": "admin", "password": settings.admin_password}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["accessToken"])


def _wait_ready(url: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_client.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


def _raw(port: int, data: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _json_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    body = answer.json()
    assert body["error"] == code and body["message"] and body["requestId"], body


# -- an app's own 503 ------------------------------------------------------------------------------
def test_app_503s_pass_through_and_eject_no_replica(
    gateway: Nginx, replicas: list[Replica], postgres: Postgres, token: str
) -> None:
    """Before the fix, nginx retried 503 and counted it against max_fails: a dozen 503s marked both
    replicas down and everyone got 502 for fail_timeout (10 s)."""
    headers = {"Authorization": f"Bearer {token}"}
    postgres.stop()
    try:
        answers = [http_client.get(f"{gateway.url}/api/nodes", headers=headers, timeout=10) for _ in range(12)]
    finally:
        postgres.start()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] in ("database_unavailable", "sessions_unavailable"), answer.text
        assert answer.headers.get_list("retry-after") == ["5"], answer.headers  # the app's, not doubled
    for replica in replicas:  # the database is back for each replica, asked directly
        deadline = time.monotonic() + 20
        while http_client.get(f"{replica.url}/api/nodes", headers=headers, timeout=10).status_code != 200:
            assert time.monotonic() < deadline, f"{replica.url} did not recover"
            time.sleep(0.1)
    statuses = [http_client.get(f"{gateway.url}/api/nodes", headers=headers, timeout=10).status_code for _ in range(20)]
    assert statuses == [200] * 20, statuses


# -- unknown hosts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "staging.living-codex.org"])
def test_the_specs_server_names_are_served(gateway: Nginx, host: str) -> None:
    answer = http_client.get(f"{gateway.url}/health/live", headers={"Host": host}, timeout=5)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", ["/health/live", "/metrics", "/api/nodes/", "/docs"])
def test_an_unknown_host_is_refused_and_never_reflected(gateway: Nginx, path: str) -> None:
    answer = http_client.get(f"{gateway.url}{path}", headers={"Host": "evil.example"}, timeout=5)
    _json_error(answer, 421, "unknown_host")
    assert "evil" not in str(answer.headers).lower() and "evil" not in answer.text


def test_an_absolute_uri_or_a_missing_host_is_refused(gateway: Nginx) -> None:
    absolute = _raw(
        gateway.port, b"GET http://evil.example/metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    assert absolute.startswith(b"HTTP/1.1 421"), absolute[:200]
    assert b"evil" not in absolute
    no_host = _raw(gateway.port, b"GET /health/live HTTP/1.0\r\n\r\n")
    assert no_host.startswith(b"HTTP/1.1 421"), no_host[:200]


# -- nginx's own errors ----------------------------------------------------------------------------
def test_a_malformed_request_is_a_json_400(gateway: Nginx) -> None:
    answer = _raw(gateway.port, b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: again\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, answer[:300]
    assert b'"error":"bad_request"' in body


def test_trace_is_a_json_405(gateway: Nginx) -> None:
    _json_error(httpx.request("TRACE", f"{gateway.url}/health/live", timeout=5), 405, "method_not_allowed")


def test_a_made_up_method_is_a_json_405_and_never_reaches_a_replica(gateway: Nginx, replicas: list[Replica]) -> None:
    """Each new method was a new label value on a replica's metrics, kept forever: unbounded memory."""
    _json_error(httpx.request("QZXWVUTS", f"{gateway.url}/api/nodes", timeout=5), 405, "method_not_allowed")
    for replica in replicas:
        assert "QZXWVUTS" not in http_client.get(f"{replica.url}/metrics", timeout=5).text


def test_an_oversized_body_is_a_json_413(gateway: Nginx, token: str) -> None:
    answer = httpx.post(
        f"{gateway.url}/api/nodes",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )
    _json_error(answer, 413, "body_too_large")


def test_an_overlong_uri_is_a_json_414(gateway: Nginx) -> None:
    _json_error(http_client.get(f"{gateway.url}/api/nodes?q={'a' * 20000}", timeout=5), 414, "uri_too_long")


def test_the_login_rate_limit_is_a_json_429_with_retry_after(gateway: Nginx) -> None:
    # Every connection is opened first, then one request is sent on each, back to back: the burst reaches
    # nginx within milliseconds however busy this machine is. (Building an httpx request per call, a
    # niced client can fall under the zone's 10/s.)
    connections = [http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30) for _ in range(60)]
    try:
        for connection in connections:
            connection.connect()
        began = time.monotonic()
        for connection in connections:
            connection.request("GET", "/api/auth/me")  # cheap; zone auth: 10/s, burst 20
        answers = []
        for connection in connections:
            raw = connection.getresponse()
            answers.append(httpx.Response(raw.status, headers=raw.getheaders(), content=raw.read()))
        elapsed = time.monotonic() - began
    finally:
        for connection in connections:
            connection.close()
    # The app throttles failed logins with its own 429 (login_throttled); here the gateway's limit is wanted.
    limited = [a for a in answers if a.status_code == 429 and a.json()["error"] == "rate_limited"]
    assert limited, [(a.status_code, a.text[:80]) for a in answers]
    assert len(answers) - len(limited) <= 1 + 20 + 10 * elapsed, (len(limited), elapsed)  # the burst, then 10/s
    _json_error(limited[0], 429, "rate_limited")
    assert limited[0].headers["retry-after"] == "1"
    assert limited[0].headers["x-content-type-options"] == "nosniff"


def test_no_replica_is_a_json_502_and_a_denied_path_a_json_403(tmp_path: Path) -> None:
    dead = free_port()
    # Loopback taken off /metrics' allow list, so this client is outside the network.
    nginx = start_nginx(tmp_path, [f"127.0.0.1:{dead}"], replace={"allow 127.0.0.1;": ""})
    try:
        answer = http_client.get(f"{nginx.url}/health/live", timeout=10)
        denied = http_client.get(f"{nginx.url}/metrics", timeout=10)
    finally:
        nginx.stop()
    _json_error(answer, 502, "bad_gateway")
    assert answer.headers["retry-after"] == "5"
    _json_error(denied, 403, "forbidden")


def test_a_silent_replica_is_a_json_504(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        # The deployed read timeout is 60 s; a test cannot wait that long.
        nginx = start_nginx(
            tmp_path, [f"127.0.0.1:{port}"], replace={"proxy_read_timeout 60s": "proxy_read_timeout 1s"}
        )
        try:
            answer = http_client.get(f"{nginx.url}/health/live", timeout=15)
        finally:
            nginx.stop()
    _json_error(answer, 504, "gateway_timeout")
    assert answer.headers["retry-after"] == "5"


# -- slow clients ----------------------------------------------------------------------------------
def _seconds_until_closed(port: int, results: dict[int, float]) -> None:
    """Send a request's headers one byte a second, never finishing; how long until the server hangs up."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n")
        for _ in range(60):
            try:
                sock.sendall(b"X")
                if sock.recv(1024) == b"":
                    break
            except TimeoutError:
                continue  # no answer yet: still open
            except OSError:
                break
    results[port] = time.monotonic() - began


def test_slow_headers_are_cut_off_by_nginx_and_by_the_replicas(gateway: Nginx, replicas: list[Replica]) -> None:
    """Before the fix a replica kept such a connection for as long as the client kept dripping."""
    results: dict[int, float] = {}
    ports = [gateway.port, replicas[0].port]
    threads = [threading.Thread(target=_seconds_until_closed, args=(port, results)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert set(results) == set(ports)
    for port in ports:
        assert results[port] < 30, f"port {port} kept a slow-header connection for {results[port]:.0f} s"


def test_a_rotating_x_forwarded_for_is_throttled_after_the_free_attempts(gateway: Nginx) -> None:
    """nginx used to append the client's X-Forwarded-For and uvicorn believed it, so each new
    forged hop was a new address with five free guesses."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        created = client.post(
            "/api/auth/register", json={"username": "xff-victim", "password": "rotating-hops-password"}
        )
        assert created.status_code == 201, created.text
        statuses: list[tuple[int, str]] = []
        for n in range(8):  # one at a time: the gateway's own login limit (burst 20) is never what answers
            answer = client.post(
                "/api/auth/login",
                json={"username": "xff-victim", "password": f"wrong-{n}"},
                headers={"X-Forwarded-For": f"198.51.100.{n + 1}", "X-Real-IP": f"203.0.113.{n + 1}"},
            )
            statuses.append((answer.status_code, answer.json()["error"]))
            if answer.status_code == 429:
                break
    # The sixth comes within the 1 s delay the fifth failure set; on a busy machine it may come later and
    # fail (401), and the next meets a 2 s delay, then 4 s. On main every one was 401, each hop a new address.
    free, throttled = statuses[:5], statuses[5:]
    assert free == [(401, "invalid_credentials")] * 5, statuses
    assert throttled[-1] == (429, "login_throttled") and all(s == (401, "invalid_credentials") for s in throttled[:-1])


SECURITY_HEADER_NAMES = [name.lower() for name, _ in SECURITY_HEADERS]


def _security_headers(answer: httpx.Response) -> dict[str, list[str]]:
    return {name: answer.headers.get_list(name) for name in [*SECURITY_HEADER_NAMES, "strict-transport-security"]}


def test_security_headers_are_sent_once_through_the_gateway_and_by_a_replica_reached_directly(
    gateway: Nginx, replicas: list[Replica]
) -> None:
    """nginx added its set on top of the replica's, so proxied answers carried every header
    twice. nginx owns them at the edge; a replica reached directly still sends the same set."""
    direct = http_client.get(f"{replicas[0].url}/health/live", timeout=5)
    expected = {name.lower(): [value] for name, value in SECURITY_HEADERS}
    assert {k: v for k, v in _security_headers(direct).items() if v} == expected  # the app's set is nginx's
    answers = [
        http_client.get(f"{gateway.url}/health/live", timeout=5),  # proxied
        http_client.get(f"{gateway.url}/api/nodes", timeout=5),  # proxied, the app's own 401
        http_client.get(f"{gateway.url}/api/nodes", headers={"X-Forwarded-Proto": "https"}, timeout=5),
        httpx.request("QZXWVUTS", f"{gateway.url}/api/nodes", timeout=5),  # nginx's own 405
        http_client.get(
            f"{gateway.url}/health/live", headers={"Host": "evil.example"}, timeout=5
        ),  # the default server
    ]
    for answer in answers:
        assert _security_headers(answer) == {**expected, "strict-transport-security": []}, (
            answer.request.url,
            answer.status_code,
        )
