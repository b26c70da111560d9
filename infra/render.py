"""Configuration files rendered from the spec: nginx.conf and prometheus.yml.

One template per file serves every environment (local processes, Docker staging, Kubernetes
production); only addresses and paths differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from infra.spec import EnvironmentSpec

TEMPLATES = Path(__file__).with_name("templates")
_jinja = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ALERT_RULES_FILE = "alert-rules.yml"
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
        upstreams=list(upstreams),
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
    )


def render_prometheus(
    spec: EnvironmentSpec,
    app_targets: Sequence[str],
    *,
    rules_path: str = ALERT_RULES_FILE,
    scrape_interval: str = "15s",
    kubernetes_sd: bool = False,
) -> str:
    """prometheus.yml that scrapes every app replica and loads the generated alert rules."""
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
        "rule_files": [rules_path],
        "scrape_configs": [job],
    }
    return "# Rendered from infra/render.py; do not edit.\n" + yaml.safe_dump(config, sort_keys=False)
