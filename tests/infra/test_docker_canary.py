"""Docker staging's canary step as the program declares it: with `living-codex:canary` (set by codexops for
one `up`), one canary container beside the serving ones, scraped by Prometheus, and the gateway's weighted
upstream reloaded in place by a command; the gateway container itself is the same, so no step replaces it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.mock_runtime import Declaration, declare, with_release
from infra.spec import SpecError, load_spec, spec_from_config
from tests.infra.conftest import container, docker_env
from tests.infra.test_nginx_conf import _for_this_nginx, _nginx_t, _self_signed

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "command:local:Command"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"  # installed by make setup
SERVING_IMAGE = "ghcr.io/living-codex/living-codex@sha256:" + "a" * 64
CANARY_IMAGE = "ghcr.io/living-codex/living-codex@sha256:" + "b" * 64


def committed_config(stack: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return config


def staging_with(canary: dict[str, Any] | None) -> Declaration:
    """Staging as codexops' config file for one step passes it: the serving image, and the canary if any."""
    config = {**committed_config("staging"), "living-codex:image": SERVING_IMAGE, "living-codex:release": "1.0.0+a"}
    if canary is not None:
        config["living-codex:canary"] = canary
    return declare(spec_from_config("staging", config, "a step's config file"))


def canary_at(weight: int) -> dict[str, Any]:
    return {"release": "1.1.0+b", "image": CANARY_IMAGE, "weight": weight}


@pytest.fixture(scope="module")
def serving() -> Declaration:
    return staging_with(None)


@pytest.fixture(scope="module")
def step() -> Declaration:
    return staging_with(canary_at(10))


def upstream(conf: str) -> list[str]:
    block = conf.split("upstream living_codex {", 1)[1].split("}", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("server ")]


def test_a_step_declares_one_canary_container_of_its_release(step: Declaration) -> None:
    canary = container(step, "app-canary")
    assert canary["name"] == "living-codex-app-canary" and canary["image"] == CANARY_IMAGE
    assert docker_env(canary)["CODEX_RELEASE"] == "1.1.0+b"  # its metrics carry its release
    for name in ("app-1", "app-2"):  # the serving replicas stay on what the stack serves
        assert container(step, name)["image"] == SERVING_IMAGE
        assert docker_env(container(step, name))["CODEX_RELEASE"] == "1.0.0+a"
    assert canary["wait"] is True  # `up` returns once it is healthy
    assert set(container(step, "app-1")) == set(canary)  # the same kind of replica: limits, health, secrets


def test_prometheus_scrapes_the_canary_by_a_reload_and_its_config_passes_promtool(
    serving: Declaration, step: Declaration, tmp_path: Path
) -> None:
    assert container(step, "prometheus") == container(serving, "prometheus")  # never replaced by a step
    scrape = step.one(COMMAND, "prometheus-canary")
    targets = yaml.safe_load(scrape.inputs["stdin"])["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["living-codex-app-1:5002", "living-codex-app-2:5002", "living-codex-app-canary:5002"]
    script = scrape.inputs["create"]
    assert script.index("promtool check config /etc/prometheus/prometheus.yml.next") < script.index("kill -HUP 1")
    urns = {r.name: r.urn for r in step.custom()}
    assert {urns["prometheus"], urns["app-canary"]} <= set(scrape.dependencies)
    rules = tmp_path / "alert-rules.yml"
    rules.write_text(next(u["content"] for u in container(step, "prometheus")["uploads"] if "alert-rules" in u["file"]))
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape.inputs["stdin"].replace("/etc/prometheus/alert-rules.yml", str(rules)))
    checked = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_step_weights_the_gateway_upstream_and_its_conf_passes_nginx_t(step: Declaration, tmp_path: Path) -> None:
    reload = step.one(COMMAND, "gateway-weights")
    conf = reload.inputs["stdin"]
    assert upstream(conf) == [
        "server living-codex-app-1:5002 weight=90 max_fails=3 fail_timeout=10s resolve;",
        "server living-codex-app-2:5002 weight=90 max_fails=3 fail_timeout=10s resolve;",
        "server living-codex-app-canary:5002 weight=20 max_fails=3 fail_timeout=10s resolve;",
    ]  # 20 / (90 + 90 + 20) = 10% of requests
    cert, key = _self_signed(tmp_path)
    local = {"app-1": "127.0.0.1:5101", "app-2": "127.0.0.1:5102", "app-canary": "127.0.0.1:5199"}
    conf = re.sub(r"living-codex-(app-\d+|app-canary):5002", lambda m: local[m[1]], conf)
    conf = conf.replace(" /tmp/", f" {tmp_path}/").replace("/etc/nginx/tls/tls.crt", cert)
    result = _nginx_t(_for_this_nginx(conf.replace("/etc/nginx/tls/tls.key", key)), tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_weight_change_reloads_nginx_and_never_replaces_the_gateway(serving: Declaration, step: Declaration) -> None:
    later = staging_with(canary_at(50))
    for name in ("gateway", "prometheus", "app-1", "app-2"):
        assert container(step, name) == container(serving, name) == container(later, name), name
    first, second = step.one(COMMAND, "gateway-weights"), later.one(COMMAND, "gateway-weights")
    assert first.inputs["create"] == second.inputs["create"] and first.inputs["stdin"] != second.inputs["stdin"]
    assert later.one(COMMAND, "prometheus-canary").inputs == step.one(COMMAND, "prometheus-canary").inputs
    assert "weight=100" in upstream(second.inputs["stdin"])[2]  # 50%: 100 / (50 + 50 + 100)
    script = first.inputs["create"]
    checked, reloaded = script.index("nginx -q -t -c /etc/nginx/nginx.conf.next"), script.index("nginx -s reload")
    assert checked < script.index("mv /etc/nginx/nginx.conf.next /etc/nginx/nginx.conf") < reloaded
    assert first.inputs["environment"] == {"DOCKER_HOST": "ssh://deploy@staging.living-codex.org"}
    urns = {r.name: r.urn for r in step.custom()}
    # Deleted before the canary's container (it depends on it): the upload is back before the canary goes.
    assert {urns["gateway"], urns["app-canary"]} <= set(first.dependencies)
    assert "mv /etc/nginx/nginx.conf.uploaded /etc/nginx/nginx.conf" in first.inputs["delete"]
    assert first.inputs["triggers"] == ["gateway-id"]  # a new gateway container gets the weights again


def test_weight_zero_starts_the_canary_outside_the_upstream() -> None:
    started = staging_with(canary_at(0))
    assert container(started, "app-canary")["image"] == CANARY_IMAGE
    conf = started.one(COMMAND, "gateway-weights").inputs["stdin"]
    assert not any("canary" in line for line in upstream(conf)) and "weight=" not in conf


def test_without_a_canary_nothing_of_it_is_declared(serving: Declaration, staging: Declaration) -> None:
    for declaration in (serving, staging):
        names = {r.name for r in declaration.resources}
        assert "app-canary" not in names and not declaration.of_type(COMMAND)
        assert "canary" not in str(container(declaration, "prometheus")["uploads"])


def test_kubernetes_and_the_committed_files_refuse_a_canary(tmp_path: Path) -> None:
    config = {**committed_config("production"), "living-codex:canary": canary_at(10)}
    with pytest.raises(SpecError, match="Argo Rollouts"):
        spec_from_config("production", config, "Pulumi.production.yaml")
    text = (ROOT / "Pulumi.staging.yaml").read_text() + "  living-codex:canary: {release: r1, image: x, weight: 10}\n"
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    with pytest.raises(SpecError, match="set by codexops during a rollout"):
        load_spec("staging", tmp_path)


def test_production_declares_no_canary_container_or_command(production: Declaration) -> None:
    assert not production.of_type(COMMAND)
    assert not any("canary" in r.name and r.type.startswith("docker:") for r in production.resources)
    assert with_release(load_spec("production")).canary is None


def test_the_policy_pack_passes_a_step(step: Declaration) -> None:
    from policies.evaluate import evaluate

    resources = [(r.type, r.name, r.inputs) for r in step.custom()]
    assert evaluate(resources, "Staging", stack="staging") == []
    broken = [(t, n, {**p, "memory": 0} if n == "app-canary" else p) for t, n, p in resources]
    assert [(v.resource, v.level) for v in evaluate(broken, "Staging", stack="staging")][:1] == [
        ("app-canary", "mandatory")
    ]  # the canary is held to the replicas' rules
