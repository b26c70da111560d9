"""The gate's alert step reads what fires from Alertmanager, the place alerts reach people from."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexops.gate import check_alerts
from codexops.targets import Target
from infra.render import render_alertmanager
from infra.spec import load_spec
from tests.support.alertmanager import post_alert, running_alertmanager
from tests.support.servers import free_port

# A target with no Prometheus: only Alertmanager can make this step fail.
TARGET = Target("staging", "docker", "http://127.0.0.1:9", load_spec("staging"), None, tls=False)


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with running_alertmanager(render_alertmanager(load_spec("staging")), tmp_path) as url:
        monkeypatch.setenv("CODEX_ALERTMANAGER_URL", url)
        yield url


def test_a_critical_alert_in_alertmanager_fails_the_gate(manager: str) -> None:
    post_alert(manager, alertname="CodexDatabaseDown", severity="critical", stack="staging")
    step = check_alerts(TARGET, wait=0)
    assert step.status == "fail" and step.figures["source"] == "Alertmanager"
    assert step.reasons == ["CodexDatabaseDown (critical) firing: CodexDatabaseDown in a test"]


def test_a_warning_alert_warns_and_no_alert_passes(manager: str) -> None:
    assert check_alerts(TARGET, wait=0).status == "pass"
    post_alert(manager, alertname="CodexHighLatency", severity="warning", stack="staging")
    assert check_alerts(TARGET, wait=0).status == "warn"


STARVED = "the load generator was starved: it waited for a CPU 60 % of the time"


def test_with_the_load_generator_starved_latency_alerts_are_not_judged(manager: str) -> None:
    """The latency alerts measured the machine that starved the load: INCONCLUSIVE, not FAIL."""
    post_alert(manager, alertname="CodexP95LatencyCritical", severity="critical", stack="staging")
    post_alert(manager, alertname="CodexP95LatencyWarning", severity="warning", stack="staging")
    assert check_alerts(TARGET, wait=0).status == "fail"  # a load the client delivered: the stack is slow
    step = check_alerts(TARGET, wait=0, starved=STARVED)
    assert step.status == "inconclusive", step
    assert step.figures["not_judged"] == ["CodexP95LatencyCritical", "CodexP95LatencyWarning"]
    assert step.reasons == [
        "not judged: CodexP95LatencyCritical, CodexP95LatencyWarning firing, on the machine that starved "
        f"the load ({STARVED})"
    ]


def test_with_the_load_generator_starved_any_other_alert_still_fails(manager: str) -> None:
    post_alert(manager, alertname="CodexP95LatencyCritical", severity="critical", stack="staging")
    post_alert(manager, alertname="CodexDatabaseDown", severity="critical", stack="staging")
    step = check_alerts(TARGET, wait=0, starved=STARVED)
    assert (
        step.status == "fail" and step.reasons[0] == "CodexDatabaseDown (critical) firing: CodexDatabaseDown in a test"
    )


def test_an_alertmanager_that_does_not_answer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_ALERTMANAGER_URL", f"http://127.0.0.1:{free_port()}")
    step = check_alerts(TARGET, wait=0)
    assert step.status == "fail" and step.reasons[0].startswith("Alertmanager did not answer")


def test_each_local_stack_has_its_own_alertmanager(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default stack's on the runbook's range (9095), a stack with a port range on portBase + 4."""
    monkeypatch.delenv("CODEX_PORT_BASE", raising=False)  # the declared ports
    from codexops import localenv
    from codexops.targets import local_target

    default = localenv.local_stack()
    assert default.alertmanager_url() == "http://127.0.0.1:9095"
    assert local_target(default.name, "local").alertmanager_url == default.alertmanager_url()
    ranged = localenv.LocalStack(
        default.spec.model_copy(update={"local": default.spec.local.model_copy(update={"portBase": 7100})})
    )
    assert ranged.ports.alertmanager == 7104
    assert ("alertmanager", 7104) in [(p.name, p.port) for p in ranged.processes]
