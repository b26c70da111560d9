"""The rollout policies pass production's Rollout and AnalysisTemplate and name what a worse one lacks."""

from __future__ import annotations

from infra.mock_runtime import Declaration
from policies import rollout
from policies.core import ANALYSIS_TEMPLATE, ROLLOUT
from tests.policies.conftest import Props, check, check_stack, mutated, props_of


def _steps(props: Props) -> list[Props]:
    return list(props["spec"]["strategy"]["canary"]["steps"])


def _resources(declaration: Declaration) -> list[tuple[str, str, Props]]:
    return [(r.type, r.name, r.inputs) for r in declaration.custom()]


def test_production_rollout_analyses_every_step(production: Declaration) -> None:
    props = props_of(production, ROLLOUT, "app-rollout")
    assert check(rollout.steps_analysed, ROLLOUT, props) == []
    unanalysed = mutated(
        props, lambda p: p["spec"]["strategy"]["canary"].update(steps=[s for s in _steps(p) if "analysis" not in s])
    )
    found = check(rollout.steps_analysed, ROLLOUT, unanalysed)
    assert any("without an analysis" in m for m in found) and any("last step" in m for m in found), found


def test_a_rollout_without_a_canary_strategy_is_refused(production: Declaration) -> None:
    props = mutated(
        props_of(production, ROLLOUT, "app-rollout"), lambda p: p["spec"].update(strategy={"blueGreen": {}})
    )
    assert check(rollout.steps_analysed, ROLLOUT, props) == [
        "the Rollout has no canary strategy: every replica would move at once"
    ]


def test_production_analysis_compares_with_the_baseline(production: Declaration) -> None:
    props = props_of(production, ANALYSIS_TEMPLATE, "app-canary-analysis")
    assert check(rollout.analysis_compares, ANALYSIS_TEMPLATE, props) == []
    absolute = mutated(
        props,
        lambda p: p["spec"].update(
            metrics=[m for m in p["spec"]["metrics"] if "version!=" not in m["provider"]["prometheus"]["query"]]
        ),
    )
    assert check(rollout.analysis_compares, ANALYSIS_TEMPLATE, absolute) == [
        "no metric reads the baseline: the canary is judged only against absolute limits"
    ]
    never_quiet = mutated(props, lambda p: [m.pop("failureCondition", None) for m in p["spec"]["metrics"]])
    assert check(rollout.analysis_compares, ANALYSIS_TEMPLATE, never_quiet) == [
        "no samples metric with both conditions: a step without traffic would pass"
    ]


def test_a_rollout_naming_an_undeclared_template_is_refused(production: Declaration) -> None:
    resources = _resources(production)
    assert check_stack(rollout.analysis_declared, resources) == []
    without = [r for r in resources if r[0] != ANALYSIS_TEMPLATE]
    assert any("not declared" in m for m in check_stack(rollout.analysis_declared, without))
