"""The programs cross real boundaries, under Pulumi's mocks: exact images and their pull credentials,
where things run (the Docker host, the kubeconfig), the gate's own identity, one owner for the app's
environment."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.sync_await import _sync_await

from codexops import localenv
from infra import images
from infra.mock_runtime import Declaration, declare, with_release
from infra.program import NoRelease
from infra.providers import MissingDockerHost
from infra.spec import ROOT, EnvironmentSpec, load_spec
from policies import kubernetes
from tests.infra.conftest import Variant, container, docker_env, pod_spec
from tests.policies.conftest import check

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
POD_OWNERS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:CronJob")


def _pod_images(declaration: Declaration) -> dict[str, str]:
    found: dict[str, str] = {}
    for resource in declaration.resources:
        if resource.type in POD_OWNERS:
            spec = resource.inputs["spec"]
            pod = spec["jobTemplate"]["spec"]["template"]["spec"] if "jobTemplate" in spec else spec["template"]["spec"]
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                found[f"{resource.name}/{c['name']}"] = str(c["image"])
        if resource.type == "docker:index/container:Container":
            found[resource.name] = str(resource.inputs["image"])
    return found


# -- finding 1: images --------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["staging", "production", "kind"])
def test_a_stack_without_a_promoted_release_is_refused(stack: str) -> None:
    spec = load_spec(stack)
    assert spec.image is None  # the committed stacks name no tag that no workflow pushes
    with pytest.raises(NoRelease, match=f"no release promoted to {stack} yet"):
        declare(spec)


def test_every_container_runs_an_exact_image(staging: Declaration, production: Declaration) -> None:
    everywhere: list[str] = []
    for declaration in (staging, production):
        found = _pod_images(declaration)
        assert found and all(DIGEST.search(image) for image in found.values()), found
        everywhere += found.values()
    # A pinned image runs exactly as Git names it (never re-resolved); an unpinned one is resolved, tag kept
    # readable. Some run on one platform only (kube-state-metrics, the offsite copy of production's backups).
    for image in images.THIRD_PARTY:
        if image in images.UNPINNED:
            assert any(ref.startswith(f"{image}@sha256:") for ref in everywhere), image
        else:
            assert image in everywhere, image


def test_third_party_images_are_pinned_by_digest_in_git() -> None:
    # Only this one has no digest recorded yet (no registry here, none found pinned publicly): a new constant
    # without one fails.
    assert images.UNPINNED == (images.AWS_CLI,)
    for image in (images.POSTGRES, images.REDIS, images.NGINX):  # the single-replica StatefulSets' and the gateway's
        assert DIGEST.search(image) and ":" in image.split("@")[0].rsplit("/", 1)[-1], image


def test_the_policy_refuses_an_image_without_a_digest(production: Declaration) -> None:
    props = production.one("kubernetes:apps/v1:Deployment", "prometheus").inputs
    assert check(kubernetes.images_by_digest, "kubernetes:apps/v1:Deployment", props) == []
    tagged = json.loads(json.dumps(props))
    prometheus, redis = (image.split("@")[0] for image in (images.PROMETHEUS, images.REDIS))  # tags only
    tagged["spec"]["template"]["spec"]["containers"][0]["image"] = prometheus
    assert check(kubernetes.images_by_digest, "kubernetes:apps/v1:Deployment", tagged) == [
        f"container prometheus: image {prometheus} has no @sha256 digest"
    ]
    docker = {"name": "living-codex-redis", "image": redis}
    assert check(kubernetes.images_by_digest, "docker:index/container:Container", docker) == [
        f"container living-codex-redis: image {redis} has no @sha256 digest"
    ]


def test_redis_has_the_cve_2025_49844_fix() -> None:
    version = tuple(int(p) for p in re.match(r"redis:(\d+)\.(\d+)\.(\d+)", images.REDIS).groups())  # type: ignore[union-attr]
    assert version >= (8, 2, 2) or (7, 4, 6) <= version < (7, 5, 0), images.REDIS


def test_the_registry_lookup_needs_no_docker_daemon(staging: Declaration, production: Declaration) -> None:
    for declaration in (staging, production):
        registry = declaration.one("pulumi:providers:docker", "registry").inputs
        assert registry["disableDockerDaemonCheck"] == "true"
        auth = json.loads(registry["registryAuth"])
        assert auth == [
            {
                "address": "ghcr.io",
                "username": "living-codex-deploy",
                "password": "registry-password-from-the-esc-environment",
            }
        ]


def test_production_pods_pull_with_the_registry_credentials(production: Declaration) -> None:
    pull = production.one("kubernetes:core/v1:Secret", "app-registry").inputs
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(pull["stringData"][".dockerconfigjson"])["auths"]["ghcr.io"]
    assert config["username"] == "living-codex-deploy"
    assert config["password"] == "registry-password-from-the-esc-environment"
    assert config["auth"]  # base64 user:password, what kubelet sends
    app = pod_spec(production, "kubernetes:apps/v1:Deployment", "app")
    assert app["imagePullSecrets"] == [{"name": pull["metadata"]["name"]}]


def test_the_policy_refuses_a_private_image_without_pull_credentials(production: Declaration) -> None:
    props = production.one("kubernetes:apps/v1:Deployment", "app").inputs
    policy = kubernetes.private_image_pull_credentials
    assert check(policy, "kubernetes:apps/v1:Deployment", props) == []
    bare = json.loads(json.dumps(props))
    del bare["spec"]["template"]["spec"]["imagePullSecrets"]
    image = bare["spec"]["template"]["spec"]["containers"][0]["image"]
    assert check(policy, "kubernetes:apps/v1:Deployment", bare) == [
        f"container app: image {image} is private and the pod has no imagePullSecrets"
    ]


def test_staging_pulls_with_the_registry_credentials(staging: Declaration) -> None:
    provider = staging.one("pulumi:providers:docker", "docker").inputs
    assert json.loads(provider["registryAuth"])[0]["address"] == "ghcr.io"


def test_without_registry_settings_no_pull_secret(variant: Variant) -> None:
    text = "  living-codex:registry:\n    server: ghcr.io\n    username: living-codex-deploy\n"
    declaration = variant("production", (text, ""))
    assert not declaration.of_type("kubernetes:core/v1:Secret") or all(
        r.name != "app-registry" for r in declaration.of_type("kubernetes:core/v1:Secret")
    )
    assert "imagePullSecrets" not in pod_spec(declaration, "kubernetes:apps/v1:Deployment", "app")


# -- finding 2: where things run ------------------------------------------------------------------------
def test_staging_runs_on_its_docker_host(staging: Declaration, variant: Variant) -> None:
    assert staging.one("pulumi:providers:docker", "docker").inputs["host"].startswith("ssh://")
    with pytest.raises(MissingDockerHost, match="set docker:host"):
        variant("staging", ("  docker:host: ssh://deploy@staging.living-codex.org\n", ""))


def test_production_takes_its_kubeconfig_from_an_esc_environment() -> None:
    document = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())
    assert "living-codex/production" in document["environment"]
    assert "kubernetes:kubeconfig" not in document["config"]  # a credential: never in the file
    assert document["config"]["kubernetes:context"]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_gate_targets_a_name_a_runner_resolves(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexops.targets import remote_target

    monkeypatch.delenv("CODEX_GATEWAY_URL", raising=False)
    spec = load_spec(stack)
    assert not spec.domain.endswith((".local", ".localhost", ".internal")), spec.domain
    assert remote_target(stack, stack, None).url == f"{'https' if spec.tls else 'http'}://{spec.domain}"
    monkeypatch.setenv("CODEX_GATEWAY_URL", "https://staging.example.net/")
    assert remote_target(stack, stack, None).url == "https://staging.example.net"


# -- finding 3: the gate's own identity -----------------------------------------------------------------
def test_the_stack_provisions_the_gate_account(
    staging: Declaration, production: Declaration, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert staging.one("random:index/randomPassword:RandomPassword", "gate-password")
    env = docker_env(container(staging, "app-1"))
    assert env["GATE_USERNAME"] == "codex-gate" and env["GATE_PASSWORD"].startswith("generated-gate-password")
    assert "ADMIN_PASSWORD" not in env  # CI never needs the admin's password
    secret = production.one("kubernetes:core/v1:Secret", "secrets").inputs["stringData"]
    assert secret["GATE_PASSWORD"].startswith("generated-gate-password")
    config = production.one("kubernetes:core/v1:ConfigMap", "app-config").inputs["data"]
    assert config["GATE_USERNAME"] == "codex-gate"
    app = pod_spec(production, "kubernetes:apps/v1:Deployment", "app")["containers"][0]
    assert {
        "name": "GATE_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "living-codex-secrets", "key": "GATE_PASSWORD"}},
    } in app["env"]


def test_the_gate_account_is_exported_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    exported: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
    declare(with_release(load_spec("staging")))
    assert exported["gateUsername"] == "codex-gate"
    assert isinstance(exported["gatePassword"], pulumi.Output)
    assert _sync_await(exported["gatePassword"].is_secret()) is True


def test_the_local_environment_provisions_the_gate_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path))
    stack = localenv.LocalStack(load_spec("staging"))
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "secrets.env").write_text(
        "JWT_SECRET=kept\nADMIN_PASSWORD=a\nPOSTGRES_PASSWORD=p\nREDIS_PASSWORD=r\n"
    )
    values = localenv.local_secrets(stack)  # an older file: the gate's password is added, nothing lost
    assert values["JWT_SECRET"] == "kept" and len(values["GATE_PASSWORD"]) >= 32
    assert not (tmp_path / "staging" / "secrets.env").exists()  # moved into the private folder
    assert stack.secrets_file.stat().st_mode & 0o777 == 0o600 and stack.private.stat().st_mode & 0o777 == 0o700
    assert localenv.local_secrets(stack) == values
    env = localenv.app_environment(stack, 1, values, localenv.read_state(stack))
    assert env["GATE_USERNAME"] == "codex-gate" and env["GATE_PASSWORD"] == values["GATE_PASSWORD"]


# -- finding 7: one owner for the app's environment -----------------------------------------------------
def _changed(spec: EnvironmentSpec, path: str, value: Any) -> EnvironmentSpec:
    """`spec` with `path` set to `value`; with a tuple of candidates, the first that differs from the
    spec's own (a stack file may already hold one of them)."""
    data = spec.model_dump()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if isinstance(value, tuple):
        value = next(v for v in value if v != node[last])
    node[last] = value
    return EnvironmentSpec(**data)


def _kubernetes_env(spec: EnvironmentSpec) -> dict[str, str]:
    return dict(declare(spec).one("kubernetes:core/v1:ConfigMap", "app-config").inputs["data"])


def _docker_env(spec: EnvironmentSpec) -> dict[str, str]:
    return docker_env(container(declare(spec), "app-1"))


def _local_env(spec: EnvironmentSpec) -> dict[str, str]:
    return localenv.app_environment(
        localenv.LocalStack(spec),
        1,
        dict.fromkeys(localenv.LOCAL_SECRET_KEYS, "s"),
        {
            "releases": {},
            "app_env": {},
        },
    )


SPEC_FIELDS = {  # every spec field that reaches the app's environment, and two values for it (one differs)
    "thresholds.memoryUsagePercent": ({"warning": 70.0, "critical": 85.0}, {"warning": 71.0, "critical": 86.0}),
    "thresholds.healthScore": ({"warning": 85.0, "critical": 50.0}, {"warning": 86.0, "critical": 51.0}),
    "resources.memoryLimit": ("768Mi", "640Mi"),
    "shutdown.graceSeconds": (33, 34),
    "environment": ("Development", "Staging"),
}


@pytest.mark.parametrize("field", sorted(SPEC_FIELDS))
def test_each_spec_field_reaches_every_platform(field: str) -> None:
    production, staging = with_release(load_spec("production")), with_release(load_spec("staging"))
    changed = {}
    for name, render, spec in (
        ("kubernetes", _kubernetes_env, production),
        ("docker", _docker_env, staging),
        ("local", _local_env, staging),
    ):
        before, after = render(spec), render(_changed(spec, field, SPEC_FIELDS[field]))
        changed[name] = {key for key in after if before.get(key) != after[key]}
    assert changed["kubernetes"], field
    assert changed["kubernetes"] == changed["docker"] == changed["local"], changed


def test_trusted_proxies_are_the_gateways_on_every_platform(production: Declaration, staging: Declaration) -> None:
    assert (
        production.one("kubernetes:core/v1:ConfigMap", "app-config").inputs["data"]["TRUSTED_PROXIES"]
        == "10.244.0.0/16"
    )
    network = staging.one("docker:index/network:Network", "network").inputs["ipamConfigs"][0]["subnet"]
    assert docker_env(container(staging, "app-1"))["TRUSTED_PROXIES"] == network == staging.spec.dockerSubnet
    assert _local_env(staging.spec)["TRUSTED_PROXIES"] == "127.0.0.1,::1"
    assert (
        _kubernetes_env(_changed(production.spec, "podNetwork", "100.64.0.0/10"))["TRUSTED_PROXIES"] == "100.64.0.0/10"
    )


# -- finding 2 in the workflows: access, refresh, no admin password ---------------------------------------
WORKFLOWS = ROOT / ".github" / "workflows"


def _workflow(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    return document


def test_no_workflow_needs_the_admin_password() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        assert "ADMIN_PASSWORD" not in path.read_text(), path.name


def test_gates_log_in_with_the_stacks_gate_account_masked() -> None:
    for name, job in (("main.yml", "staging"), ("e2e-kind.yml", "kind")):
        runs = "\n".join(s.get("run", "") for s in _workflow(name)["jobs"][job]["steps"])
        assert "pulumi stack output gatePassword --show-secrets" in runs, name
        assert 'echo "::add-mask::$password"' in runs and "CODEX_LOAD_PASSWORD=$password" in runs, name


def test_staging_is_reached_over_ssh_wherever_pulumi_or_the_checklist_touch_it() -> None:
    action = yaml.safe_load((ROOT / ".github" / "actions" / "staging-ssh" / "action.yml").read_text())
    script = action["runs"]["steps"][0]["run"]
    assert "ssh-add -" in script and "known_hosts" in script and "DOCKER_HOST=$host" in script
    for name, job in (("main.yml", "staging"), ("drift.yml", "drift")):  # in staging's environment
        uses = [s.get("uses") for s in _workflow(name)["jobs"][job]["steps"]]
        assert "./.github/actions/staging-ssh" in uses, name
    # Never in a pull request's code: that key is the Docker host's, which has no read-only access.
    assert "staging-ssh" not in (ROOT / ".github" / "workflows" / "pull-request.yml").read_text()
    staging = _workflow("main.yml")["jobs"]["staging"]
    assert staging["env"]["CODEX_GATEWAY_URL"] == "${{ vars.STAGING_URL }}"


def test_production_gate_gets_the_kubeconfig_from_esc_with_a_private_file() -> None:
    # Production is deployed (and gated) where its file changes on main: main.yml's sync job.
    job = _workflow("main.yml")["jobs"]["sync"]
    assert "ADMIN_PASSWORD" not in str(job)  # the gate logs in with its own account from the outputs
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "umask 077" in runs and 'pulumi env open "$PULUMI_ORG/living-codex/production"' in runs
    assert "KUBECONFIG=$RUNNER_TEMP/kubeconfig" in runs


def test_ups_refresh_first() -> None:
    runs = "\n".join(s.get("run", "") for s in _workflow("e2e-kind.yml")["jobs"]["kind"]["steps"])
    assert "pulumi up --yes --skip-preview --refresh" in runs


def test_the_checklist_reaches_production_pods_in_the_stacks_context(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from codexops.checklist import plugin
    from codexops.targets import remote_target

    calls: list[list[str]] = []

    def run(command: list[str], **_: Any) -> SimpleNamespace:
        calls.append(command)
        return SimpleNamespace(stdout="pod/living-codex-app-1\npod/living-codex-app-2\n")

    monkeypatch.setattr("codexops.checklist.plugin.subprocess.run", run)
    checked = plugin.checked(remote_target("production", "production", None))
    assert calls[0][:3] == ["kubectl", "--context", "living-codex-production"]
    assert [h.backend.context for h in checked.hosts] == ["living-codex-production"] * 2


def test_the_release_the_file_names_is_the_id_the_app_reports_on_every_platform() -> None:
    production, staging = with_release(load_spec("production")), with_release(load_spec("staging"))
    assert "CODEX_RELEASE" not in _kubernetes_env(production)  # no release named: the image's own version
    named = "0.1.0.dev7+g0123456789ab+0123456789ab"
    assert _kubernetes_env(_changed(production, "release", named))["CODEX_RELEASE"] == named
    assert _docker_env(_changed(staging, "release", named))["CODEX_RELEASE"] == named
    # Locally each replica is told the release it runs (a rolling deploy mixes two), not the file's.
    assert "CODEX_RELEASE" not in _local_env(_changed(staging, "release", named))
