"""Renewed certificates reach the running servers: the gateway's and Redis's supervisor shells, run for real
with this machine's nginx and redis-server on loopback. The certificate files are replaced the way the kubelet
refreshes a Secret volume; the served certificate must change without a restart, and a stop signal must still
stop the server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.mock_runtime import Declaration
from infra.reload_scripts import nginx_with_reload, redis_with_reload
from tests.infra.conftest import pod_spec
from tests.support.servers import free_port, wait_for_port


def _certificate(directory: Path, name: str, ca: tuple[Path, Path] | None = None) -> tuple[Path, Path]:
    """A key and certificate for CN=name: self-signed, or signed by `ca`."""
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subject = ["-subj", f"/CN={name}"]
    if ca is None:
        command = ["openssl", "req", "-x509", "-new", "-key", str(key), "-days", "2", *subject, "-out", str(cert)]
        subprocess.run(command, check=True, capture_output=True)
        return cert, key
    request = directory / f"{name}.csr"
    subprocess.run(
        ["openssl", "req", "-new", "-key", str(key), *subject, "-out", str(request)], check=True, capture_output=True
    )
    sign = ["openssl", "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1])]
    subprocess.run([*sign, "-CAcreateserial", "-days", "2", "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def _install(cert: Path, key: Path, directory: Path) -> None:
    """Swap both files in at once, as the kubelet's atomic writer does (a rename per file)."""
    for source, name in ((cert, "tls.crt"), (key, "tls.key")):
        staged = directory / f".{name}.new"
        staged.write_bytes(source.read_bytes())
        os.replace(staged, directory / name)


def _served_subject(port: int) -> str:
    shown = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "codex.test"],
        input="",
        capture_output=True,
        text=True,
        timeout=10,
    )
    subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject"], input=shown.stdout, capture_output=True, text=True
    )
    return subject.stdout.strip()


def _wait_for_subject(port: int, expected: str, seconds: float = 15) -> str:
    deadline, seen = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        seen = _served_subject(port)
        if expected in seen:
            return seen
        time.sleep(0.3)
    return seen


@pytest.fixture
def supervisor() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def _start(script: str, env: dict[str, str], started: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        ["sh", "-c", script],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started.append(process)
    return process


def _stops_on_term(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)  # to the shell, which forwards it to the server
    process.wait(timeout=15)
    assert subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True).stdout == b""  # nothing left


NGINX_CONF = """
pid {dir}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/tls/tls.crt;
        ssl_certificate_key {dir}/tls/tls.key;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def test_nginx_serves_a_renewed_certificate_without_a_restart(
    tmp_path: Path, supervisor: list[subprocess.Popen[str]]
) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    old, new = _certificate(tmp_path, "old.codex.test"), _certificate(tmp_path, "renewed.codex.test")
    _install(*old, tls)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp_path, port=port))
    script = nginx_with_reload(str(conf), f"{tls}/tls.crt {tls}/tls.key {conf}")
    env = {"PATH": "/usr/sbin:/usr/bin:/bin", "RELOAD_SECONDS": "1"}
    process = _start(script, env, supervisor)
    wait_for_port(port)
    assert "old.codex.test" in _served_subject(port)
    master = (tmp_path / "nginx.pid").read_text().strip()

    _install(*new, tls)
    assert "renewed.codex.test" in _wait_for_subject(port, "renewed.codex.test")
    assert (tmp_path / "nginx.pid").read_text().strip() == master  # reloaded in place, not restarted

    # A broken renewal (a key that does not match) fails `nginx -t`: nginx keeps serving the good one.
    (tls / "tls.key").write_text("not a key")
    time.sleep(5)  # a few 1 s reload cycles, each with its `nginx -t`, however busy the machine
    assert "renewed.codex.test" in _served_subject(port)
    _stops_on_term(process)
    assert "reload FAILED" in (process.stdout.read() if process.stdout else "")


def test_redis_serves_a_renewed_certificate_without_a_restart(
    tmp_path: Path, supervisor: list[subprocess.Popen[str]]
) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    ca = _certificate(tmp_path, "codex-internal-ca")
    old, new = _certificate(tmp_path, "old.redis.test", ca), _certificate(tmp_path, "renewed.redis.test", ca)
    (tls / "ca.crt").write_bytes(ca[0].read_bytes())
    _install(*old, tls)
    port = free_port()
    server = (
        f"redis-server --port 0 --tls-port {port} --bind 127.0.0.1 --tls-cert-file {tls}/tls.crt "
        f"--tls-key-file {tls}/tls.key --tls-ca-cert-file {tls}/ca.crt --tls-auth-clients no "
        f'--requirepass "$REDIS_PASSWORD" --save "" --appendonly no --dir {tmp_path}'
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "RELOAD_SECONDS": "1",
        "REDIS_PORT": str(port),
        "REDIS_PASSWORD": "reload-test-password",
        "REDISCLI_AUTH": "reload-test-password",
    }
    process = _start(redis_with_reload(server, str(tls)), env, supervisor)
    wait_for_port(port)
    assert "old.redis.test" in _served_subject(port)
    _install(*new, tls)
    assert "renewed.redis.test" in _wait_for_subject(port, "renewed.redis.test")
    _stops_on_term(process)


def test_the_gateway_and_redis_run_under_the_reload_supervisor(production: Declaration) -> None:
    (nginx,) = pod_spec(production, "kubernetes:apps/v1:Deployment", "gateway")["containers"]
    assert nginx["command"][:2] == ["sh", "-c"] and "kill -HUP $pid" in nginx["command"][2]
    assert "/etc/nginx/tls/tls.crt" in nginx["command"][2]
    (redis,) = pod_spec(production, "kubernetes:apps/v1:StatefulSet", "redis")["containers"]
    assert "CONFIG SET tls-cert-file /tls/tls.crt" in redis["command"][2]
    assert {"name": "REDISCLI_AUTH", "valueFrom": redis["env"][0]["valueFrom"]} in redis["env"]
