"""`codexops preview STACK` end to end: plan, manifests, validation, clear refusals."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from codexops.cli import ROOT, cli

runner = CliRunner()


def test_preview_production_writes_valid_manifests(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["preview", "production", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "nothing was deployed" in result.output
    assert "0 invalid" in result.output
    assert "Prerequisites" in result.output and "cert-manager/cloudflare-api-token" in result.output
    files = sorted((tmp_path / "production").glob("*.yaml"))
    kinds = {yaml.safe_load(f.read_text())["kind"] for f in files}
    assert {"Deployment", "StatefulSet", "HorizontalPodAutoscaler", "NetworkPolicy", "Secret"} <= kinds


def test_preview_staging_has_no_manifests(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["preview", "staging", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "docker:index/container:Container" in result.output
    assert "none (this stack declares no Kubernetes objects)" in result.output


def test_a_broken_stack_is_refused_naming_the_key(tmp_path: Path) -> None:
    text = (ROOT / "Pulumi.production.yaml").read_text().replace("living-codex:replicas:", "living-codex:replica:")
    (tmp_path / "Pulumi.broken.yaml").write_text(text)
    result = runner.invoke(cli, ["preview", "broken", "--stacks", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown key 'living-codex:replica'" in result.output and "Pulumi.broken.yaml" in result.output
