"""The Docker gateway's in-place reload (infra/reload_scripts.py), run for real against this machine's nginx:
a stand-in `docker` CLI runs each `docker exec` here, as this machine has no Docker. Under steady requests,
a canary step's weighted upstream takes effect without a failed request or a restart, a file nginx refuses
is never installed, and the restore puts the uploaded file back."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from infra.reload_scripts import docker_nginx_reload, docker_nginx_restore
from infra.render import render_nginx
from infra.spec import load_spec
from infra.weights import upstream_weights
from tests.infra.test_nginx_conf import NGINX
from tests.support.servers import free_port, wait_for_port
from tests.support.waiting import wait_until

# Stands for the docker CLI: `exec [-i] [-u USER] CONTAINER COMMAND...` runs COMMAND on this machine.
DOCKER = """#!/bin/sh
case "$1" in inspect) exit 0 ;; exec) shift ;; *) exit 64 ;; esac
while [ $# -gt 0 ]; do case "$1" in -i) shift ;; -u) shift 2 ;; *) break ;; esac; done
shift
exec "$@"
"""
CONTAINER = "living-codex-gateway"


def _replica(name: str) -> ThreadingHTTPServer:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None: ...

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Traffic:
    """Requests one after another through the gateway over one keep-alive connection: who answered each,
    and how many failed. A reload retires nginx's old workers, which close their idle keep-alive connections;
    a request sent as that close arrives is reset before any answer, and is sent again once, as HTTP clients
    do for an idempotent request on a reused connection (RFC 9112, 9.3.1): counted in `resent`."""

    def __init__(self, url: str) -> None:
        self.answered: Counter[str] = Counter()
        self.failed = self.resent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, args=(url,), daemon=True)
        self._thread.start()

    def _get(self, client: httpx.Client, url: str) -> httpx.Response | None:
        try:
            return client.get(url)
        except (httpx.ReadError, httpx.RemoteProtocolError):  # reset before any answer: sent again
            self.resent += 1
        try:
            return client.get(url)
        except httpx.HTTPError:
            return None

    def _send(self, url: str) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                answer = self._get(client, url)
                if answer is not None and answer.status_code == 200:
                    self.answered[answer.text] += 1
                else:
                    self.failed += 1

    def window(self, seconds: float) -> Counter[str]:
        before = Counter(self.answered)
        time.sleep(seconds)
        return self.answered - before

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Path, int, dict[str, str], dict[str, ThreadingHTTPServer]]]:
    replicas = {name: _replica(name) for name in ("app-1", "app-2", "app-canary")}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER)
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "run").mkdir()
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(tmp_path, port, replicas, 0))
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], start_new_session=True)
    env = {"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/bin"}
    try:
        wait_for_port(port)
        # nginx listens before it writes its pid file: the test reads that file.
        pid_file = tmp_path / "run" / "nginx.pid"
        wait_until(lambda: pid_file.read_text().strip() == str(nginx.pid), 30, "nginx's pid file written")
        yield conf, port, env, replicas
    finally:
        os.killpg(nginx.pid, signal.SIGQUIT)
        nginx.wait(timeout=15)
        for server in replicas.values():
            server.shutdown()


def _workers(master: int) -> set[int]:
    return {child.pid for child in psutil.Process(master).children()}


def _wait_retired(master: int, old: set[int]) -> None:
    """Until the workers from before a reload have exited: from then on only the new configuration answers."""
    wait_until(lambda: not _workers(master) & old, 60, "the old nginx workers exited after the reload")


def render(tmp_path: Path, port: int, replicas: dict[str, ThreadingHTTPServer], weight: int) -> str:
    """The gateway's nginx.conf over loopback replicas, with the canary at `weight` percent (0: out)."""
    address = {name: f"127.0.0.1:{server.server_address[1]}" for name, server in replicas.items()}
    serving = [address["app-1"], address["app-2"]]
    upstreams, weights = serving, {}
    if weight:
        shares = upstream_weights(weight, len(serving))
        upstreams = [*serving, address["app-canary"]]
        weights = {**dict.fromkeys(serving, shares.baseline), address["app-canary"]: shares.canary}
    spec = load_spec("staging").model_copy(update={"tls": False, "serverNames": ("127.0.0.1",)})
    return render_nginx(
        spec,
        upstreams,
        weights=weights,
        runtime_dir=str(tmp_path / "run"),
        listen_host="127.0.0.1:",
        http_port=port,
        api_rate="5000r/s",
        api_burst=5000,
    )


def _sh(script: str, stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], input=stdin, env=env, capture_output=True, text=True, timeout=60)


def test_a_step_reloads_the_weights_in_place_without_a_failed_request(
    gateway: tuple[Path, int, dict[str, str], dict[str, ThreadingHTTPServer]], tmp_path: Path
) -> None:
    conf, port, env, replicas = gateway
    uploaded = conf.read_text()
    master = (tmp_path / "run" / "nginx.pid").read_text()
    traffic = Traffic(f"http://127.0.0.1:{port}/api/nodes")
    try:
        assert traffic.window(1.0)["app-canary"] == 0  # the upload: the serving replicas alone

        old = _workers(int(master))
        step = _sh(docker_nginx_reload(CONTAINER, str(conf)), render(tmp_path, port, replicas, 50), env)
        assert step.returncode == 0, step.stderr
        _wait_retired(int(master), old)
        half = traffic.window(2.0)
        assert half["app-canary"] > 0.3 * sum(half.values()), half  # 50% asked; least_conn weighs by load too

        refused = _sh(docker_nginx_reload(CONTAINER, str(conf)), "http { this is not nginx }", env)
        assert refused.returncode != 0 and "weight=100" in conf.read_text()  # the step's file stays

        old = _workers(int(master))
        restored = _sh(docker_nginx_restore(CONTAINER, str(conf)), "", env)
        assert restored.returncode == 0, restored.stderr
        assert conf.read_text() == uploaded
        _wait_retired(int(master), old)
        after = traffic.window(2.0)
        assert after["app-canary"] == 0 and sum(after.values()) > 0, after
    finally:
        traffic.stop()
    assert traffic.failed == 0, f"{traffic.failed} requests failed across the reloads"
    assert traffic.resent <= 2  # at most one reset per reload, of a connection the old worker closed
    assert (tmp_path / "run" / "nginx.pid").read_text() == master  # reloaded in place, never restarted
    again = _sh(docker_nginx_restore(CONTAINER, str(conf)), "", env)  # a container created since: nothing kept
    assert again.returncode == 0 and conf.read_text() == uploaded
