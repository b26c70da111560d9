"""Production's canary under Argo Rollouts, rendered from the spec: steps, analysis and scaling."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.manifests import kubernetes_manifests, validate
from infra.mock_runtime import Declaration, declare, with_release
from infra.spec import load_spec

ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
TEMPLATE = "kubernetes:argoproj.io/v1alpha1:AnalysisTemplate"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.fixture(scope="module")
def released() -> Declaration:
    """Production with a release promoted to it: the release the canary's replicas report."""
    return declare(with_release(load_spec("production").model_copy(update={"release": "r42"})))


def _one(declaration: Declaration, type_: str) -> dict[str, object]:
    (resource,) = declaration.of_type(type_)
    return dict(resource.inputs)


def test_the_rollout_walks_the_spec_steps_each_analysed(released: Declaration) -> None:
    spec = released.spec
    steps = _one(released, ROLLOUT)["spec"]["strategy"]["canary"]["steps"]  # type: ignore[index]
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    pauses = [s["pause"]["duration"] for s in steps if "pause" in s]
    assert weights == [step.weight for step in spec.rollout.steps]
    assert pauses == [f"{step.pause_seconds}s" for step in spec.rollout.steps]
    analyses = [s["analysis"] for s in steps if "analysis" in s]
    assert len(analyses) == len(weights)
    assert all(a["args"] == [{"name": "canary", "value": "r42"}] for a in analyses)


def test_pulumi_up_waits_until_every_step_passed(released: Declaration) -> None:
    """An aborted or paused rollout never turns Healthy: the update fails, the deploy rolls back."""
    annotations = _one(released, ROLLOUT)["metadata"]["annotations"]  # type: ignore[index]
    pauses = sum(step.pause_seconds for step in released.spec.rollout.steps)
    assert annotations["pulumi.com/waitFor"] == "jsonpath={.status.phase}=Healthy"
    assert int(annotations["pulumi.com/timeoutSeconds"]) > pauses


def test_the_rollout_takes_over_the_deployment_and_the_autoscaler_follows(production: Declaration) -> None:
    rollout = _one(production, ROLLOUT)["spec"]
    (deployment,) = [r for r in production.of_type("kubernetes:apps/v1:Deployment") if r.name == "app"]
    assert rollout["workloadRef"]["name"] == deployment.inputs["metadata"]["name"]  # type: ignore[index]
    target = _one(production, HPA)["spec"]["scaleTargetRef"]  # type: ignore[index]
    assert target["kind"] == "Rollout" and target["name"] == deployment.inputs["metadata"]["name"]


def test_rollout_and_analysis_match_argo_rollouts_crds(production: Declaration) -> None:
    manifests = [m for m in kubernetes_manifests(production) if m.kind in ("Rollout", "AnalysisTemplate")]
    assert len(manifests) == 2
    assert [f.message for f in validate(manifests, production.spec.kubernetesVersion)] == []


def test_every_analysis_query_is_valid_promql(production: Declaration, tmp_path: Path) -> None:
    metrics = _one(production, TEMPLATE)["spec"]["metrics"]  # type: ignore[index]
    rules = [
        {
            "record": f"canary:{m['name'].replace('-', '_')}",
            "expr": m["provider"]["prometheus"]["query"].replace("{{args.canary}}", "r1"),
        }
        for m in metrics
    ]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "canary", "rules": rules}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {m["name"] for m in metrics} >= {"canary-samples", "baseline-samples", "p95-regression", "p99-regression"}


def test_the_controller_may_reach_prometheus_and_nothing_else_opens(released: Declaration) -> None:
    (policy,) = [r for r in released.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy") if "argo" in r.name]
    rule = policy.inputs["spec"]["ingress"][0]
    namespace = rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
    assert namespace == released.spec.rollout.controllerNamespace
    assert rule["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert policy.inputs["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "living-codex-prometheus"
