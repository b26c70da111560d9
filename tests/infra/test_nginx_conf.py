"""The one nginx.conf template, rendered for each stack and checked by the real `nginx -t`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.render import SECURITY_HEADERS, render_nginx
from infra.spec import load_spec

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # installed by make setup; a missing one fails


def _self_signed(directory: Path) -> tuple[str, str]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=codex.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def _nginx_version() -> tuple[int, ...]:
    banner = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr  # nginx version: nginx/1.22.1
    return tuple(int(part) for part in banner.strip().rsplit("/", 1)[-1].split("."))


def _for_this_nginx(conf: str) -> str:
    """A config written for the gateway image's nginx 1.28, without what this machine's older one lacks."""
    if _nginx_version() < (1, 27, 3):  # this machine's nginx predates `resolve` on upstream servers
        conf = conf.replace(" resolve;", ";")
    if _nginx_version() < (1, 25, 1):  # ...and the `http2` directive (Debian 12 ships 1.22)
        conf = conf.replace("http2 on;", "")
    return conf


def _nginx_t(conf: str, directory: Path) -> subprocess.CompletedProcess[str]:
    path = directory / "nginx.conf"
    path.write_text(conf)
    return subprocess.run(["nginx", "-t", "-c", str(path), "-p", str(directory)], capture_output=True, text=True)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_rendered_config_passes_nginx_t(stack: str, tmp_path: Path) -> None:
    spec = load_spec(stack)
    cert, key = _self_signed(tmp_path) if spec.tls else ("", "")
    # Upstreams are loopback addresses here: nginx -t resolves names, and service names exist only
    # inside the Docker network or the cluster. Everything else is the deployed text.
    conf = render_nginx(
        spec, ["127.0.0.1:5101", "127.0.0.1:5102"], tls_cert=cert, tls_key=key, runtime_dir=str(tmp_path)
    )
    result = _nginx_t(conf, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_production_has_tls_hsts_and_a_redirect(tmp_path: Path) -> None:
    conf = render_nginx(load_spec("production"), ["app:5002"], tls_cert="/c", tls_key="/k")
    assert "listen 443 ssl" in conf and "Strict-Transport-Security" in conf
    assert "return 301 https://$host$request_uri" in conf


def test_staging_has_tls_hsts_a_redirect_and_every_common_part() -> None:
    staging = load_spec("staging")
    conf = render_nginx(staging, ["app-1:5002", "app-2:5002"], tls_cert="/c", tls_key="/k")
    assert "listen 443 ssl" in conf and "Strict-Transport-Security" in conf
    assert "return 301 https://$host$request_uri" in conf
    # Plain HTTP (the local environment's loopback) never sends HSTS: browsers ignore it there anyway.
    plain = render_nginx(staging.model_copy(update={"tls": False}), ["app-1:5002"])
    assert "Strict-Transport-Security" not in plain and "return 301" not in plain
    for part in (
        "limit_req_zone",
        "client_max_body_size 1m",
        "gzip on",
        "keepalive 32",
        "proxy_next_upstream error timeout;",
        "X-Content-Type-Options",
        "server app-1:5002",
        "server app-2:5002",
    ):
        assert part in conf, part


def test_tls_without_a_certificate_is_refused() -> None:
    with pytest.raises(ValueError, match="tls_cert"):
        render_nginx(load_spec("production"), ["app:5002"])


def test_the_deployed_gateway_config_passes_nginx_t(tmp_path: Path) -> None:
    """The exact text the production program puts in the gateway ConfigMap, with only the cluster's
    names and mount paths pointed at this machine."""
    from infra.mock_runtime import declare, with_release

    declaration = declare(with_release(load_spec("production")))
    config_map = next(r for r in declaration.of_type("kubernetes:core/v1:ConfigMap") if r.name == "gateway-config")
    conf = config_map.inputs["data"]["nginx.conf"]
    cert, key = _self_signed(tmp_path)
    conf = (
        conf.replace(" /tmp/", f" {tmp_path}/")
        .replace("living-codex-app.living-codex.svc.cluster.local:5002", "127.0.0.1:5002")
        .replace("kube-dns.kube-system.svc.cluster.local", "127.0.0.1")
        .replace("/etc/nginx/tls/tls.crt", cert)
        .replace("/etc/nginx/tls/tls.key", key)
    )
    assert "http2 on;" in conf and " http2;" not in conf  # the image's nginx 1.28: no deprecated listen flag
    result = _nginx_t(_for_this_nginx(conf), tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_deployed_docker_gateway_config_passes_nginx_t(tmp_path: Path) -> None:
    """The exact nginx.conf the staging program uploads into the gateway container (TLS from the uploaded
    certificate), with only the Docker network's names and the upload paths pointed at this machine."""
    from infra.mock_runtime import declare, with_release

    declaration = declare(with_release(load_spec("staging")))
    gateway = declaration.one("docker:index/container:Container", "gateway")
    conf = next(u["content"] for u in gateway.inputs["uploads"] if u["file"] == "/etc/nginx/nginx.conf")
    cert, key = _self_signed(tmp_path)
    assert "ssl_certificate /etc/nginx/tls/tls.crt;" in conf and "return 301 https://" in conf
    conf = re.sub(r"living-codex-app-\d+:5002", "127.0.0.1:5002", conf.replace(" /tmp/", f" {tmp_path}/"))
    conf = conf.replace("/etc/nginx/tls/tls.crt", cert).replace("/etc/nginx/tls/tls.key", key)
    result = _nginx_t(_for_this_nginx(conf), tmp_path)
    assert result.returncode == 0, result.stderr


def test_replica_503s_are_never_retried_nor_counted_and_names_come_from_the_spec() -> None:
    conf = render_nginx(load_spec("staging"), ["app-1:5002"], tls_cert="/c", tls_key="/k")
    retries = [line.strip() for line in conf.splitlines() if line.strip().startswith("proxy_next_upstream ")]
    # Only readiness, which no client input can fail, moves on past a replica's 503 (one draining).
    assert retries == ["proxy_next_upstream error timeout;", "proxy_next_upstream error timeout http_503;"], retries
    readiness = conf.split("location = /health/ready {", 1)[1].split("}", 1)[0]
    assert "http_503" in readiness and "proxy_pass http://living_codex_readiness;" in readiness
    # ...in an upstream of its own that counts no failures, so no replica is ever marked down by it
    probe_upstream = conf.split("upstream living_codex_readiness {", 1)[1].split("}", 1)[0]
    assert "server app-1:5002 max_fails=0;" in probe_upstream
    assert "server_name staging.living-codex.org localhost 127.0.0.1;" in conf
    assert "default_server" in conf and "return 421" in conf and "ssl_reject_handshake on" in conf
    production = render_nginx(load_spec("production"), ["app:5002"], tls_cert="/c", tls_key="/k")
    assert "server_name codex.living-codex.org;" in production and "ssl_reject_handshake on" in production


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_every_security_header_nginx_adds_is_hidden_from_the_replicas(stack: str) -> None:
    """One set per answer: a header nginx adds and a replica also sends would otherwise go out twice."""
    spec = load_spec(stack)
    conf = render_nginx(spec, ["127.0.0.1:5101"], tls_cert="/c" if spec.tls else "", tls_key="/k" if spec.tls else "")
    added = set(re.findall(r"^\s*add_header (\S+) ", conf, re.M)) - {"Retry-After"}  # Retry-After: see its map
    hidden = set(re.findall(r"^\s*proxy_hide_header (\S+);", conf, re.M))
    assert added == {name for name, _ in SECURITY_HEADERS} | ({"Strict-Transport-Security"} if spec.tls else set())
    assert added <= hidden


def test_a_canary_step_weights_the_upstream_and_passes_nginx_t(tmp_path: Path) -> None:
    """A canary step's share is nginx weights (infra/weights.py): 10% over two serving replicas."""
    spec = load_spec("staging").model_copy(update={"tls": False})
    servers = ["127.0.0.1:5101", "127.0.0.1:5102", "127.0.0.1:5199"]
    conf = render_nginx(spec, servers, runtime_dir=str(tmp_path), weights=dict(zip(servers, (90, 90, 20), strict=True)))
    assert "server 127.0.0.1:5199 weight=20 max_fails=3" in conf and "server 127.0.0.1:5101 weight=90" in conf
    result = _nginx_t(conf, tmp_path)
    assert result.returncode == 0, result.stderr
