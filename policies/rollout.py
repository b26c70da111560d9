"""Progressive delivery keeps its promise: every canary step is analysed before more traffic moves, and
the analysis can tell a quiet step (Inconclusive) from a good one and compares with the baseline."""

from __future__ import annotations

from collections.abc import Iterable

from policies.core import (
    ANALYSIS_TEMPLATE,
    DEPLOYMENT,
    HIGH,
    ROLLOUT,
    Props,
    Resources,
    component,
    resource_policy,
    stack_policy,
)

BASELINE_SELECTOR = "version!="  # infra/canary_queries.baseline


def steps_of(props: Props) -> list[Props]:
    return list(((props.get("spec") or {}).get("strategy") or {}).get("canary", {}).get("steps") or [])


@resource_policy(
    "canary-steps-are-analysed",
    "Each canary step's traffic is analysed before the rollout gives the new release more, and no step "
    "takes a replica out of service first.",
    HIGH,
    "Declare living-codex:rollout.steps (infra/components/canary.py adds an analysis after each pause).",
    (ROLLOUT,),
)
def steps_analysed(resource_type: str, props: Props) -> Iterable[str]:
    canary = ((props.get("spec") or {}).get("strategy") or {}).get("canary")
    if canary is None:
        yield "the Rollout has no canary strategy: every replica would move at once"
        return
    if canary.get("maxUnavailable", 1) != 0:
        yield "canary.maxUnavailable must be 0: a step must not serve with fewer replicas"
    steps, pending = steps_of(props), None
    for step in steps:
        if "setWeight" in step:
            if pending is not None:
                yield f"weight {pending}% goes on to {step['setWeight']}% without an analysis"
            pending = step["setWeight"]
        elif "analysis" in step:
            pending = None
    if pending is not None:
        yield f"the last step ({pending}%) is not analysed before the release takes all traffic"
    if not any("setWeight" in step for step in steps):
        yield "the Rollout has no weighted step"


@resource_policy(
    "canary-analysis-compares-with-baseline",
    "A canary analysis compares the canary with the release serving beside it and has a sample count that "
    "makes a quiet step Inconclusive rather than a pass.",
    HIGH,
    "Render the AnalysisTemplate with infra/components/canary.py (samples, hard limits, relative limits).",
    (ANALYSIS_TEMPLATE,),
)
def analysis_compares(resource_type: str, props: Props) -> Iterable[str]:
    metrics = list((props.get("spec") or {}).get("metrics") or [])
    queries = [str(((m.get("provider") or {}).get("prometheus") or {}).get("query", "")) for m in metrics]
    if not any(BASELINE_SELECTOR in query for query in queries):
        yield "no metric reads the baseline: the canary is judged only against absolute limits"
    if not any(m.get("failureCondition") and "samples" in str(m.get("name")) for m in metrics):
        yield "no samples metric with both conditions: a step without traffic would pass"


@stack_policy(
    "rollout-analysis-is-declared",
    "Every AnalysisTemplate a Rollout names is declared in the stack, and the Rollout's workloadRef names "
    "the stack's app Deployment.",
    HIGH,
    "Declare the Rollout and its AnalysisTemplate together (infra/components/canary.py).",
)
def analysis_declared(resources: Resources) -> Iterable[tuple[str, str]]:
    templates = {str((p.get("metadata") or {}).get("name")) for t, _, p in resources if t == ANALYSIS_TEMPLATE}
    deployments = {
        str((p.get("metadata") or {}).get("name")) for t, _, p in resources if t == DEPLOYMENT and component(p)
    }
    for type_, name, props in resources:
        if type_ != ROLLOUT:
            continue
        for step in steps_of(props):
            for ref in (step.get("analysis") or {}).get("templates") or []:
                if ref.get("templateName") not in templates:
                    yield (
                        name,
                        f"its analysis names AnalysisTemplate {ref.get('templateName')!r}, which is not declared",
                    )
        workload = str(((props.get("spec") or {}).get("workloadRef") or {}).get("name", ""))
        if workload and workload not in deployments:
            yield name, f"its workloadRef names Deployment {workload!r}, which is not declared"


POLICIES = [steps_analysed, analysis_compares, analysis_declared]
