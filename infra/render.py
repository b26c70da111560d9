"""Configuration files rendered from the spec: nginx.conf and prometheus.yml.

One template per file serves every environment (local processes, Docker staging, Kubernetes
production); only addresses and paths differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from infra.spec import EnvironmentSpec, Receiver

TEMPLATES = Path(__file__).with_name("templates")
_jinja = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ALERT_RULES_FILE = "alert-rules.yml"
# The security headers of every answer through the gateway, its own errors included. nginx owns them at
# the edge (a 429, 502 or 504 of its own never reaches a replica); the replicas send the same set
# (app/middleware/observe.py) for whoever reaches one directly, and nginx hides theirs, so each header
# is sent once. Strict-Transport-Security is added with TLS only.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Permissions-Policy", "geolocation=(), camera=(), microphone=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# nginx's own errors, answered as JSON like the app's: (status, error code, message).
GATEWAY_ERRORS = (
    (400, "bad_request", "the request could not be parsed"),
    (403, "forbidden", "this path is not served to your address"),
    (405, "method_not_allowed", "this method is not allowed"),
    (413, "body_too_large", "request body exceeds 1048576 bytes"),
    (414, "uri_too_long", "the request line is too long"),
    (429, "rate_limited", "too many requests from your address; retry after the Retry-After seconds"),
    (502, "bad_gateway", "no replica answered; retry after the Retry-After seconds"),
    (503, "service_unavailable", "the service is unavailable; retry after the Retry-After seconds"),
    (504, "gateway_timeout", "no replica answered in time; retry after the Retry-After seconds"),
)


@dataclass(frozen=True)
class Container:
    """nginx as the public gateway in a container: logs to stdout/stderr, upstreams re-resolved through
    `resolver` (so a replaced app container or Service is found again), one worker per CPU of its limit,
    client addresses from `real_ip_from` proxies, and /metrics refused (Prometheus scrapes pods)."""

    resolver: str
    worker_processes: int
    real_ip_from: tuple[str, ...] = ()


def render_nginx(
    spec: EnvironmentSpec,
    upstreams: Sequence[str],
    *,
    tls_cert: str = "",
    tls_key: str = "",
    runtime_dir: str | None = None,
    listen_host: str = "",
    http_port: int | None = None,
    https_port: int | None = None,
    api_rate: str = "200r/s",
    api_burst: int = 400,
    container: Container | None = None,  # the public gateway of Docker or Kubernetes; None: the local one
    weights: Mapping[str, int] | None = None,  # upstream -> nginx weight, during a canary step (1 when absent)
) -> str:
    """nginx.conf for `spec`; `listen_host` like '127.0.0.1:' binds one address (local runs).

    Only the spec's server names are served; a default server refuses every other Host.
    """
    if spec.tls and not (tls_cert and tls_key):
        raise ValueError("TLS is on for this stack: give tls_cert and tls_key paths")
    return _jinja.get_template("nginx.conf.j2").render(
        spec=spec,
        server_names=spec.server_names,
        gateway_errors=GATEWAY_ERRORS,
        security_headers=SECURITY_HEADERS,
        hsts=HSTS,
        upstreams=list(upstreams),
        weights=dict(weights or {}),
        tls=spec.tls,
        tls_cert=tls_cert,
        tls_key=tls_key,
        runtime_dir=runtime_dir,
        http_port=http_port or spec.ports.http,
        https_port=https_port or spec.ports.https,
        listen_host=listen_host,
        body_limit="1m",
        api_rate=api_rate,
        api_burst=api_burst,
        auth_rate="10r/s",
        container=container,
    )


def render_prometheus(
    spec: EnvironmentSpec,
    app_targets: Sequence[str],
    *,
    rules_path: str = ALERT_RULES_FILE,
    scrape_interval: str = "15s",
    kubernetes_sd: bool = False,
    alertmanagers: Sequence[str] | None = None,
    extra_jobs: Sequence[tuple[str, str | Sequence[str]]] = (),
) -> str:
    """prometheus.yml that scrapes every app replica (and each (job, host:port) of `extra_jobs`), loads the
    generated alert rules and sends alerts to Alertmanager (`alertmanagers` as host:port; default:
    alertmanager_address(spec))."""
    job: dict[str, object] = {
        "job_name": "living-codex",
        "metrics_path": "/metrics/prometheus",
        "scrape_interval": scrape_interval,
    }
    if kubernetes_sd:
        job["kubernetes_sd_configs"] = [{"role": "pod", "namespaces": {"names": [spec.namespace]}}]
        job["relabel_configs"] = [
            {
                "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                "regex": "living-codex-app",
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                "regex": str(spec.ports.app),
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "instance"},
        ]
    else:
        job["static_configs"] = [{"targets": list(app_targets), "labels": {"environment": spec.environment.lower()}}]
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
            "external_labels": {"stack": spec.stack},
        },
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": list(alertmanagers or [alertmanager_address(spec)])}]},
            ]
        },
        "rule_files": [rules_path],
        "scrape_configs": [job, *(_static_job(name, targets) for name, targets in extra_jobs)],
    }
    return "# Rendered from infra/render.py; do not edit.\n" + yaml.safe_dump(config, sort_keys=False)


def _static_job(name: str, targets: str | Sequence[str]) -> dict[str, object]:
    listed = [targets] if isinstance(targets, str) else list(targets)
    return {"job_name": name, "static_configs": [{"targets": listed}]}


ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
ALERTMANAGER_PORT = 9093


def alertmanager_address(spec: EnvironmentSpec) -> str:
    """Where Prometheus finds Alertmanager in a stack: the container name, or the Service's DNS name."""
    if spec.platform == "kubernetes":
        return f"living-codex-alertmanager.{spec.namespace}.svc:{ALERTMANAGER_PORT}"
    return f"living-codex-alertmanager:{ALERTMANAGER_PORT}"


def alertmanager_secret_keys(spec: EnvironmentSpec) -> tuple[str, ...]:
    """Secret keys the rendered config reads as files named by the key under the secrets directory."""
    receivers = spec.alerting.receivers
    keys = []
    if any(r.slackChannel for r in receivers):
        keys.append("alertingSlackUrl")
    if any(r.email and r.email.username for r in receivers):
        keys.append("alertingSmtpPassword")
    return tuple(keys)


def _receiver(receiver: Receiver, secrets_dir: str) -> dict[str, object]:
    entry: dict[str, object] = {"name": receiver.name}
    if receiver.webhookUrl:
        entry["webhook_configs"] = [{"url": receiver.webhookUrl, "send_resolved": True}]
    if receiver.slackChannel:
        entry["slack_configs"] = [
            {
                "api_url_file": f"{secrets_dir}/alertingSlackUrl",
                "channel": receiver.slackChannel,
                "send_resolved": True,
                "title": "{{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }}) on {{ .CommonLabels.stack }}",
                "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
            }
        ]
    if receiver.email:
        email: dict[str, object] = {
            "to": receiver.email.to,
            "from": receiver.email.sender,
            "smarthost": receiver.email.smarthost,
            "require_tls": True,
            "send_resolved": True,
        }
        if receiver.email.username:
            email["auth_username"] = receiver.email.username
            email["auth_password_file"] = f"{secrets_dir}/alertingSmtpPassword"
        entry["email_configs"] = [email]
    return entry


def render_alertmanager(
    spec: EnvironmentSpec,
    *,
    default_webhook_url: str | None = None,
    secrets_dir: str = ALERTMANAGER_SECRETS_DIR,
    group_wait: str = "30s",
) -> str:
    """alertmanager.yml: every receiver of the spec's `alerting`, routed by severity.

    Alerts reach each receiver whose severities match; the rest go to the receiver 'default', a
    webhook to `alerting.defaultWebhookUrl` (else `default_webhook_url`; with neither, alerts stay in
    Alertmanager's API, which the gate reads). Credentials are read from files under `secrets_dir`
    (see alertmanager_secret_keys), never written into the config.
    """
    default: dict[str, object] = {"name": "default"}
    webhook = spec.alerting.defaultWebhookUrl or default_webhook_url
    if webhook:
        default["webhook_configs"] = [{"url": webhook, "send_resolved": True}]
    routes = [
        {
            "receiver": r.name,
            "matchers": [f'severity=~"{"|".join(r.severities)}"'],
            "continue": True,
        }
        for r in spec.alerting.receivers
    ]
    route: dict[str, object] = {
        "receiver": "default",
        "group_by": ["alertname", "stack"],
        "group_wait": group_wait,
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    if routes:
        route["routes"] = routes
    config = {
        "route": route,
        # A critical alert silences its own warning twin (memory 90% silences memory 80%).
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["stack", "instance"],
            }
        ],
        "receivers": [default, *(_receiver(r, secrets_dir) for r in spec.alerting.receivers)],
    }
    return "# Rendered from infra/render.py; do not edit.\n" + yaml.safe_dump(config, sort_keys=False)
