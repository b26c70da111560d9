"""A production gate that cannot check alerts could not run (exit 2): it never passes unchecked."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexops import gate
from codexops.gate import GateCannotRun, run_gate
from codexops.targets import Target
from infra.spec import load_spec


def _target(stack: str, prometheus_url: str | None = None) -> Target:
    # Port 9 (discard): nothing answers; the alert rule must refuse before the gate tries the target.
    return Target(stack, "url", "http://127.0.0.1:9", load_spec(stack), prometheus_url, tls=False)


def test_a_production_gate_without_prometheus_or_alertmanager_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODEX_ALERTMANAGER_URL", raising=False)
    with pytest.raises(GateCannotRun, match=r"production is a Production stack .*port-forward"):
        run_gate(_target("production"), reports=tmp_path, say=lambda _: None)
    assert not list(tmp_path.iterdir())  # refused before any check ran: no report


@pytest.mark.parametrize("given", ["prometheus", "alertmanager"])
def test_with_either_source_the_production_gate_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.delenv("CODEX_ALERTMANAGER_URL", raising=False)
    if given == "alertmanager":
        monkeypatch.setenv("CODEX_ALERTMANAGER_URL", "http://127.0.0.1:9093")
    target = _target("production", "http://127.0.0.1:9090" if given == "prometheus" else None)
    with pytest.raises(GateCannotRun, match=r"does not answer"):  # past the alert rule, to the target itself
        run_gate(target, reports=tmp_path, say=lambda _: None)


def test_the_command_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from codexops.cli import cli

    monkeypatch.delenv("CODEX_ALERTMANAGER_URL", raising=False)
    monkeypatch.setattr(gate, "HTTP_TIMEOUT", 1.0)
    result = CliRunner().invoke(
        cli, ["gate", "--target", "http://127.0.0.1:9", "--stack", "production", "--reports", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "must check alerts" in result.output
