"""Progressive delivery on Kubernetes with Argo Rollouts: a `Rollout` that takes over the app's Deployment
(`workloadRef`, so the Deployment and its protected name stay as they are) and walks the spec's canary
steps, each judged by an `AnalysisTemplate` on the stack's Prometheus with the same queries and limits
the local rehearsal uses (infra/canary_queries.py, codexops/rollout/analysis.py).

Why Argo Rollouts, not Flagger: it needs no service mesh or ingress controller (without a traffic router
the weight is the share of pods, which our own nginx gateway balances over the app Service), its analysis
has a Prometheus provider with success, failure and inconclusive outcomes, and its CRDs are plain enough to
schema-check offline (infra/crds/).
"""

from __future__ import annotations

import math
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import canary_queries as q
from infra.components.target import PREFIX, Target, child, labels, metadata
from infra.spec import EnvironmentSpec

ARGO = "argoproj.io/v1alpha1"
COMPONENT = "app"
PROMETHEUS_PORT = 9090
CONTROLLER = "Argo Rollouts v1.9.1 (its controller and CRDs, infra/crds/): https://argo-rollouts.readthedocs.io/"
# pulumi up waits for the rollout's end: Healthy once every step passed. An aborted (Degraded) or paused
# rollout (an Inconclusive step) never gets there, so the update fails at the timeout, the deploy fails
# and codexops rolls back, instead of reporting a release that Argo sent back. The timeout: every pause,
# plus the pods' start and each analysis.
ROLLOUT_DONE = "jsonpath={.status.phase}=Healthy"
AWAIT_MARGIN_SECONDS = 600


def rolls_out(spec: EnvironmentSpec) -> bool:
    """Kubernetes walks canary steps under Argo Rollouts; Docker and local stacks are driven by codexops."""
    return spec.platform == "kubernetes" and bool(spec.rollout.steps)


def scaled_workload(spec: EnvironmentSpec, host: str) -> dict[str, str]:
    """What the autoscaler scales: the Rollout once it owns the pods, else the Deployment."""
    if rolls_out(spec):
        return {"apiVersion": ARGO, "kind": "Rollout", "name": host}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": host}


def step_window(seconds: int) -> str:
    """The analysis reads the step's whole pause, at least the minute rate() needs for two scrapes."""
    return f"{max(seconds, 60)}s"


def known(expression: str) -> str:
    """The value, or 0 when there is none (no series, or NaN from a quantile of no request): the samples
    metrics make a quiet step Inconclusive, the others must not turn it into a Failure."""
    return f"(({expression}) > -Inf) or vector(0)"


def metric(name: str, query: str, success: str, failure: str | None, address: str) -> dict[str, Any]:
    """One measurement per step. With a failure condition too, a result meeting neither is Inconclusive."""
    body: dict[str, Any] = {
        "name": name,
        "count": 1,
        "successCondition": success,
        "provider": {"prometheus": {"address": address, "query": known(query)}},
    }
    if failure is not None:
        body["failureCondition"] = failure
    return body


def analysis_metrics(spec: EnvironmentSpec, window: str, address: str) -> list[dict[str, Any]]:
    """The step's analysis as Argo metrics: samples (inconclusive when quiet), the critical levels as hard
    limits, and the canary against the baseline within the relative limits."""
    canary, baseline = q.canary("{{args.canary}}"), q.baseline("{{args.canary}}")
    limits, analysis = spec.thresholds, spec.rollout.analysis
    factor, floor = 1 + analysis.maxRegressionPercent / 100, analysis.minLatencyDeltaMs / 1000
    metrics = [
        metric(
            f"{side}-samples",
            q.requests(selector, window),
            f"result[0] >= {analysis.minSamples}",
            "result[0] < 0",  # never: a quiet step is Inconclusive, not Failed
            address,
        )
        for side, selector in (("canary", canary), ("baseline", baseline))
    ]
    metrics.append(
        metric("error-rate", q.error_rate(canary, window), f"result[0] < {limits.errorRate.critical}", None, address)
    )
    metrics.append(
        metric(
            "error-rate-increase",
            f"({q.error_rate(canary, window)}) - ({q.error_rate(baseline, window)})",
            f"result[0] <= {analysis.maxErrorRateIncrease}",
            None,
            address,
        )
    )
    critical = limits.p95LatencyMs.critical / 1000
    metrics.append(metric("p95", q.latency_quantile(0.95, canary, window), f"result[0] < {critical}", None, address))
    for quantile in (0.95, 0.99):
        ours, theirs = q.latency_quantile(quantile, canary, window), q.latency_quantile(quantile, baseline, window)
        allowed = f"(({theirs}) * {factor} > ({theirs}) + {floor}) or (({theirs}) + {floor})"  # the larger
        metrics.append(
            metric(f"p{round(quantile * 100)}-regression", f"({ours}) - ({allowed})", "result[0] <= 0", None, address)
        )
    return metrics


def canary_steps(spec: EnvironmentSpec, template: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for step in spec.rollout.steps:
        steps.append({"setWeight": step.weight})
        steps.append({"pause": {"duration": f"{step.pause_seconds}s"}})
        steps.append(
            {
                "analysis": {
                    "templates": [{"templateName": template}],
                    "args": [{"name": "canary", "value": spec.release or "unreleased"}],
                }
            }
        )
    return steps


def awaited(spec: EnvironmentSpec) -> dict[str, str]:
    """pulumi-kubernetes' await annotations (its generic await, 4.18.4 and later) for the Rollout."""
    total = sum(step.pause_seconds for step in spec.rollout.steps) + AWAIT_MARGIN_SECONDS
    return {"pulumi.com/waitFor": ROLLOUT_DONE, "pulumi.com/timeoutSeconds": str(total)}


def effective_weight(weight: int, replicas: int) -> float:
    """Without a traffic router a step's weight is a share of pods: what share the canary really gets."""
    return math.ceil(replicas * weight / 100) / replicas


class CanaryRollout(pulumi.ComponentResource):
    """The Rollout over the app's Deployment and its step analysis."""

    rollout: k8s.apiextensions.CustomResource
    template: k8s.apiextensions.CustomResource

    def __init__(self, name: str, target: Target, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("living-codex:index:CanaryRollout", name, None, opts)
        spec = target.spec
        target.prerequisites.append(CONTROLLER)
        host = target.host(COMPONENT)
        address = f"http://{target.host('prometheus')}.{target.namespace}.svc.{spec.clusterDomain}:{PROMETHEUS_PORT}"
        window = step_window(max(step.pause_seconds for step in spec.rollout.steps))
        template_name = f"{host}-canary"
        self.template = k8s.apiextensions.CustomResource(
            "app-canary-analysis",
            api_version=ARGO,
            kind="AnalysisTemplate",
            metadata=metadata(target, COMPONENT, template_name),
            spec={"args": [{"name": "canary"}], "metrics": analysis_metrics(spec, window, address)},
            opts=child(self),
        )
        self.rollout = k8s.apiextensions.CustomResource(
            "app-rollout",
            api_version=ARGO,
            kind="Rollout",
            metadata={**metadata(target, COMPONENT), "annotations": awaited(spec)},
            spec={  # no replicas: the autoscaler scales the Rollout, as it scaled the Deployment
                "selector": {"matchLabels": labels(COMPONENT)},
                # The Deployment keeps its pods until the Rollout's are ready, then goes to 0.
                "workloadRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": host,
                    "scaleDown": "progressively",
                },
                "revisionHistoryLimit": 5,
                "strategy": {
                    "canary": {"maxUnavailable": 0, "maxSurge": 1, "steps": canary_steps(spec, template_name)}
                },
            },
            opts=pulumi.ResourceOptions.merge(child(self), pulumi.ResourceOptions(depends_on=[self.template])),
        )
        # The controller measures from its own namespace: the stack's default-deny would refuse it.
        self.prometheus_access = k8s.networking.v1.NetworkPolicy(
            "prometheus-from-argo-rollouts",
            metadata={**metadata(target, "prometheus", f"{PREFIX}-prometheus-from-argo-rollouts")},
            spec={
                "podSelector": {"matchLabels": labels("prometheus")},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": spec.rollout.controllerNamespace}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": PROMETHEUS_PORT}],
                    }
                ],
            },
            opts=child(self),
        )
        self.register_outputs({})
