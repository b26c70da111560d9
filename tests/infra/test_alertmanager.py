"""alertmanager.yml rendered from the spec's `alerting`: valid for the real `amtool`, routed by severity,
credentials read from files, and delivered by a real Alertmanager to a webhook."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from codexops import http_client
from infra.alerts import render_alert_rules
from infra.render import alertmanager_secret_keys, render_alertmanager, render_prometheus
from infra.spec import EnvironmentSpec, SpecError, load_spec, spec_from_config
from tests.support.alertmanager import post_alert, running_alertmanager
from tests.support.servers import free_port

AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"  # Debian's prometheus-alertmanager (make setup)
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SLACK_CIPHERTEXT = "v1:slack-url-ciphertext"


def _spec(alerting: dict[str, Any], **secrets: str) -> EnvironmentSpec:
    config: dict[str, Any] = {
        "living-codex:platform": "kubernetes",
        "living-codex:podNetwork": "10.244.0.0/16",
        "living-codex:image": "ghcr.io/living-codex/living-codex@sha256:" + "a" * 64,
        "living-codex:alerting": alerting,
    }
    config.update({f"living-codex:{key}": {"secure": value} for key, value in secrets.items()})
    return spec_from_config("test", config, "Pulumi.test.yaml")


TEAM = _spec(
    {
        "receivers": [
            {"name": "oncall-slack", "slackChannel": "#codex-oncall", "severities": ["critical"]},
            {
                "name": "ops-email",
                "email": {
                    "to": "ops@codex.test",
                    "sender": "am@codex.test",
                    "smarthost": "smtp.codex.test:587",
                    "username": "am",
                },
            },
            {"name": "hooks", "webhookUrl": "https://hooks.codex.test/alerts", "severities": ["warning"]},
        ]
    },
    alertingSlackUrl=SLACK_CIPHERTEXT,
    alertingSmtpPassword="v1:smtp-ciphertext",
)


def _check_config(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    return subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize(
    "spec", [load_spec("staging"), load_spec("production"), TEAM], ids=["staging", "production", "team"]
)
def test_amtool_accepts_the_rendered_config(spec: EnvironmentSpec, tmp_path: Path) -> None:
    result = _check_config(render_alertmanager(spec, default_webhook_url="http://127.0.0.1:9/alerts"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_refuses_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: a route to a receiver that does not exist is refused."""
    config = yaml.safe_load(render_alertmanager(TEAM))
    config["receivers"] = [r for r in config["receivers"] if r["name"] != "hooks"]
    assert _check_config(yaml.safe_dump(config), tmp_path).returncode != 0


def _routed(config: str, tmp_path: Path, *labels: str) -> set[str]:
    path = tmp_path / "alertmanager.yml"
    path.write_text(config)
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={path}", *labels], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.strip().split(","))


def test_alerts_are_routed_by_severity(tmp_path: Path) -> None:
    config = render_alertmanager(TEAM)
    assert _routed(config, tmp_path, "alertname=CodexHighErrorRate", "severity=critical") == {
        "oncall-slack",
        "ops-email",
    }
    assert _routed(config, tmp_path, "alertname=CodexHighLatency", "severity=warning") == {"ops-email", "hooks"}
    assert _routed(config, tmp_path, "alertname=Other", "severity=info") == {"default"}


def test_credentials_are_files_never_values() -> None:
    text = render_alertmanager(TEAM, secrets_dir="/run/secrets/am")
    assert SLACK_CIPHERTEXT not in text and "smtp-ciphertext" not in text
    assert "api_url_file: /run/secrets/am/alertingSlackUrl" in text
    assert "auth_password_file: /run/secrets/am/alertingSmtpPassword" in text
    assert alertmanager_secret_keys(TEAM) == ("alertingSlackUrl", "alertingSmtpPassword")
    assert alertmanager_secret_keys(load_spec("production")) == ()


@pytest.mark.parametrize(
    ("alerting", "message"),
    [
        ({"receivers": [{"name": "s", "slackChannel": "#a"}]}, "alertingSlackUrl"),
        ({"receivers": [{"name": "x"}]}, "give webhookUrl, slackChannel or email"),
        ({"receivers": [{"name": "a", "webhookUrl": "https://a.test"}] * 2}, "unique"),
        ({"receivers": [{"name": "w", "webhookUrl": "ftp://a.test"}]}, "webhookUrl"),
        ({"receivers": [{"name": "default", "webhookUrl": "https://a.test"}]}, "reserved"),
    ],
)
def test_bad_alerting_is_refused(alerting: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _spec(alerting)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_prometheus_sends_alerts_to_alertmanager(stack: str, tmp_path: Path) -> None:
    spec = load_spec(stack)
    (tmp_path / "alert-rules.yml").write_text(render_alert_rules(spec))
    text = render_prometheus(spec, ["127.0.0.1:5101"], rules_path=str(tmp_path / "alert-rules.yml"))
    targets = yaml.safe_load(text)["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == [
        (
            "living-codex-alertmanager.living-codex.svc:9093"
            if stack == "production"
            else "living-codex-alertmanager:9093"
        )
    ]
    (tmp_path / "prometheus.yml").write_text(text)
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


class _Sink(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    _Sink.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", _Sink.received
    server.shutdown()


def test_a_real_alertmanager_delivers_to_the_default_webhook(
    webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, received = webhook
    config = render_alertmanager(load_spec("staging"), default_webhook_url=url, group_wait="1s")
    with running_alertmanager(config, tmp_path) as manager:
        post_alert(manager, alertname="CodexInstanceDown", severity="critical", stack="staging")
        deadline = time.monotonic() + 15
        while not received and time.monotonic() < deadline:
            time.sleep(0.2)
    assert received, "Alertmanager delivered nothing to the webhook"
    assert received[0]["alerts"][0]["labels"]["alertname"] == "CodexInstanceDown"


def test_a_real_prometheus_sends_its_firing_alerts_to_alertmanager(tmp_path: Path) -> None:
    """The rendered prometheus.yml's `alerting` block, for real: a rule that always fires reaches Alertmanager."""
    spec = load_spec("staging")
    rules = {
        "groups": [
            {"name": "t", "rules": [{"alert": "AlwaysFiring", "expr": "vector(1)", "labels": {"severity": "warning"}}]}
        ]
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    with running_alertmanager(render_alertmanager(spec), tmp_path) as manager:
        config = render_prometheus(
            spec,
            [],
            rules_path=str(tmp_path / "rules.yml"),
            scrape_interval="1s",
            alertmanagers=[manager.split("//")[1]],
        )
        (tmp_path / "prometheus.yml").write_text(config)
        port = free_port()
        prometheus = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--rules.alert.resend-delay=1s",  # its first send may precede Alertmanager's discovery
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            alerts: list[dict[str, Any]] = []
            while not alerts and time.monotonic() < deadline:
                time.sleep(0.5)
                alerts = http_client.get(f"{manager}/api/v2/alerts", timeout=5).json()
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=10)
    assert [a["labels"]["alertname"] for a in alerts] == ["AlwaysFiring"]
    assert alerts[0]["labels"]["stack"] == "staging"  # Prometheus' external label, used for grouping
