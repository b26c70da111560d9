"""The runbook's Deployment Validation Checklist, one test per item, plus the security items a running
deployment can show. Every check has a timeout; the gate reads the JUnit XML."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.secret_strength import KNOWN_DEFAULT_SECRETS, MIN_SECRET_LENGTH
from codexops import http_client
from codexops.checklist.plugin import TIMEOUT, Checked

HEALTH_ENDPOINTS = [
    "/health",
    "/health/live",
    "/health/ready",
    "/health/memory",
    "/health/ai-pipeline",
]
CRITICAL_LINE = re.compile(r" (ERROR|CRITICAL) ")


@pytest.mark.parametrize("path", HEALTH_ENDPOINTS)
def test_all_health_endpoints_respond_200(target: Checked, path: str) -> None:
    response = target.get(path)
    assert response.status_code == 200, f"{path} answered {response.status_code}: {response.text[:300]}"


def test_database_connections_established(health: dict[str, Any]) -> None:
    database = health["database"]
    assert database["status"] == "up", f"database is {database}"
    assert database["backend"] == "postgresql", "the deployment runs on the embedded SQLite, not PostgreSQL"


def test_redis_connectivity_verified(health: dict[str, Any]) -> None:
    redis = health["redis"]
    assert redis["status"] == "up", f"Redis is {redis.get('status')}: {redis.get('error', '')}"
    assert not redis["fallbackActive"], "sessions are on the SQL fallback"


def test_memory_usage_within_normal_limits(target: Checked) -> None:
    memory = target.get("/health/memory").json()
    warning = target.spec.thresholds.memoryUsagePercent.warning
    percent = memory["memoryUsage"]["usagePercent"]
    assert percent < warning, f"memory at {percent}% of the limit (warning at {warning}%)"
    assert not memory["memoryLeaks"]["detected"], f"memory leak detected: {memory['memoryLeaks']}"


def test_no_critical_errors_in_logs(target: Checked) -> None:
    if not target.hosts:
        pytest.skip("a bare URL gives no access to the logs")
    problems = []
    for host, path in zip(target.hosts, target.log_paths, strict=True):
        log = host.file(path)
        assert log.exists, f"{path} does not exist on {host.backend.get_pretty_hostname()}"
        lines = log.content_string.splitlines()
        starts = [i for i, line in enumerate(lines) if "starting Living Codex" in line]
        current = lines[starts[-1] :] if starts else lines  # this deployment, not earlier releases
        problems += [line for line in current if CRITICAL_LINE.search(line)]
    assert not problems, "critical errors in the logs:\n" + "\n".join(problems[-10:])


def test_all_modules_loaded_successfully(health: dict[str, Any]) -> None:
    loading = health["moduleLoading"]
    assert loading["complete"], "module loading has not completed"
    assert not loading["failed"], f"modules failed to load: {loading['failed']}"
    assert loading["loaded"] == loading["discovered"]


def _metrics(target: Checked) -> str:
    """From a replica: staging's and production's gateways refuse /metrics to the public (403)."""
    if target.target.app_urls:
        response = http_client.get(target.target.app_urls[0] + "/metrics/prometheus", timeout=TIMEOUT)
    elif target.hosts:
        url = f"http://127.0.0.1:{target.spec.ports.app}/metrics/prometheus"
        fetch = f"import urllib.request as u; print(u.urlopen('{url}').read().decode())"
        return str(target.hosts[0].check_output(f'python -c "{fetch}"'))
    else:
        response = target.get("/metrics/prometheus")
    assert response.status_code == 200, f"/metrics/prometheus answered {response.status_code}"
    return response.text


def test_prometheus_metrics_exposed(target: Checked) -> None:
    text = _metrics(target)
    for name in (
        "codex_http_requests_total",
        "codex_memory_usage_bytes",
        "codex_active_sessions",
        "codex_health_score",
    ):
        assert re.search(rf"^{name}", text, re.M), f"{name} is not exposed"


def test_prometheus_scrapes_every_replica(target: Checked) -> None:
    if not target.prometheus_url:
        pytest.skip("no --prometheus-url for this target")
    targets = http_client.get(f"{target.prometheus_url}/api/v1/targets", timeout=TIMEOUT).json()["data"]
    app = [t for t in targets["activeTargets"] if t["labels"].get("job") == "living-codex"]
    expected = target.spec.replicas if target.kind != "kubernetes" else len(target.hosts)
    assert len(app) >= expected, f"Prometheus scrapes {len(app)} replicas, expected {expected}"
    down = [t["scrapeUrl"] for t in app if t["health"] != "up"]
    assert not down, f"replicas not scraped successfully: {down}"
    rules = http_client.get(f"{target.prometheus_url}/api/v1/rules", timeout=TIMEOUT).json()["data"]["groups"]
    assert any(g["rules"] for g in rules), "Prometheus has no alert rules loaded"


def test_ai_pipeline_monitoring_active(target: Checked) -> None:
    response = target.get("/health/ai-pipeline")
    body = response.json()
    assert response.status_code == 200 and body["enabled"], f"AI pipeline monitoring is off: {body}"
    assert body["status"] in ("healthy", "degraded"), f"AI pipeline is {body['status']}"
    assert body["metrics"]["queueCapacity"] > 0


def test_security_headers_configured(target: Checked) -> None:
    headers = target.get("/health/live").headers
    for name in ("x-content-type-options", "x-frame-options", "content-security-policy"):
        assert name in headers, f"{name} is missing"
    if target.target.tls:
        assert "strict-transport-security" in headers


def test_https_redirect_where_tls_is_on(target: Checked) -> None:
    if not target.target.tls:
        pytest.skip(f"the gateway of {target.target.name} serves no TLS")
    plain = target.url.replace("https://", "http://", 1)
    response = http_client.get(plain + "/health", timeout=TIMEOUT, follow_redirects=False)
    assert response.status_code == 301 and response.headers["location"].startswith("https://")


def _jwt_secrets(target: Checked) -> list[str]:
    if target.kind == "local":
        from codexops import localenv

        stack = localenv.LocalStack(target.spec)
        found = []
        for name in target.target.app_processes:
            pid = localenv.supervisor(stack).pid(name)
            environ = target.hosts[0].file(f"/proc/{pid}/environ").content
            found += [e.split(b"=", 1)[1].decode() for e in environ.split(b"\0") if e.startswith(b"JWT_SECRET=")]
        return found
    return [host.check_output("printenv JWT_SECRET") for host in target.hosts]


def test_jwt_secret_is_not_a_default(target: Checked) -> None:
    if not target.hosts:
        pytest.skip("a bare URL gives no access to the app's environment")
    values = _jwt_secrets(target)
    assert values, "JWT_SECRET is not set on the app"
    for value in values:
        assert value.lower() not in KNOWN_DEFAULT_SECRETS and len(value) >= MIN_SECRET_LENGTH, (
            "JWT_SECRET is a default or too short"
        )
