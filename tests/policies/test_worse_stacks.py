"""Stack files made worse are refused by `codexops preview`, naming the policy that refuses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from codexops.cli import ROOT, cli

PRODUCTION = (ROOT / "Pulumi.production.yaml").read_text()
WORSE = {
    "one replica": (("    minReplicas: 3", "    minReplicas: 1"), "production-replicas"),
    "latest image": (
        (
            "  living-codex:tls: true",
            "  living-codex:image: ghcr.io/living-codex/living-codex:latest\n  living-codex:tls: true",
        ),
        "pinned-image",
    ),
    "tls off": (("living-codex:tls: true", "living-codex:tls: false"), "gateway-https-in-production"),
    "plaintext secret": (
        ("config:\n", "config:\n  living-codex:jwtSecret: not-so-secret-value\n"),
        "secrets-encrypted-in-config",
    ),
    "no limits": (('    cpuLimit: "1"\n', '    cpuLimit: ""\n'), "resources-requests-and-limits"),
    "placeholder domain": (("codex.living-codex.org", "codex.example.com"), "no-placeholder-domain"),
    "current kubectl context": (("  kubernetes:context: living-codex-production\n", ""), "explicit-kubernetes-context"),
    "no alert receiver": (
        (
            "  living-codex:alerting:\n    receivers:\n      - name: ops-email\n        email:\n"
            "          to: ops@living-codex.org\n          sender: alertmanager@living-codex.org\n"
            "          smarthost: smtp.living-codex.org:587\n",
            "",
        ),
        "alert-receiver-in-production",
    ),
}


@pytest.mark.parametrize("case", sorted(WORSE))
def test_worse_stack_is_refused_with_the_policy_named(tmp_path: Path, case: str) -> None:
    (old, new), policy = WORSE[case]
    assert old in PRODUCTION
    (tmp_path / "Pulumi.worse.yaml").write_text(PRODUCTION.replace(old, new, 1))
    result = CliRunner().invoke(cli, ["preview", "worse", "--stacks", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert f"[mandatory] {policy}" in result.output
    assert "fix:" in result.output and "preview FAILED" in result.output


def test_the_committed_stacks_pass_the_whole_pack(tmp_path: Path) -> None:
    for stack in ("staging", "production"):
        result = CliRunner().invoke(cli, ["preview", stack, "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "no violations" in result.output


def test_a_plaintext_staging_certificate_key_is_refused(tmp_path: Path) -> None:
    """tlsKey is a secret key (infra/spec.py SECRET_KEYS): a stack file holding it in plaintext is refused."""
    staging = (ROOT / "Pulumi.staging.yaml").read_text()
    (tmp_path / "Pulumi.worse.yaml").write_text(staging.replace("config:\n", "config:\n  living-codex:tlsKey: k\n", 1))
    result = CliRunner().invoke(cli, ["preview", "worse", "--stacks", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "[mandatory] secrets-encrypted-in-config" in result.output
    assert "tlsKey is a plaintext value in the stack file" in result.output
