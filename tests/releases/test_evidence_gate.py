"""Evidence on a real local stack: `deploy`'s smoke is not evidence; a real full gate of the release writes
a signed attestation that check_evidence accepts; editing that gate's report makes it refused.

The stack `evidencetest` is staging's file with a short load (20 RPS for 12 s), committed in a throw-away
repository (CODEX_REPO_DIR). Ports: staging's runbook ones, or its slot of CODEX_PORT_BASE (stack_ports)
when scripts/run_tests.py gives the shard its range, so it runs beside other shards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from codexops.releases import attestation
from codexops.releases.evidence import Evidence, EvidenceRefused, check_evidence
from codexops.releases.model import Release
from tests.support.gitrepo import git, stack_repo
from tests.support.releases import build
from tests.support.suite_load import SUITE_LOAD

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STACK = "evidencetest"


def codexops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "codexops"), *args], cwd=ROOT, env=env, capture_output=True, text=True)
    print(f"$ codexops {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}")
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    tmp = tmp_path_factory.mktemp("evidence")
    document = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    document["config"]["living-codex:load"] = SUITE_LOAD
    # The stack exists only in a throw-away repository (its specs and desired state: CODEX_REPO_DIR),
    # where deploy commits its file; the checkout, which other tests read, never sees it.
    repo = stack_repo(tmp / "repo")
    (repo / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document))
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", f"stack {STACK}")
    env = {
        **os.environ,
        "CODEX_REPO_DIR": str(repo),
        "CODEX_STACKS_DIR": str(tmp / "stacks"),
        "CODEX_RELEASES_DIR": str(tmp / "store"),
        "CODEX_SIGNING_KEY": str(tmp / "key" / "signing-key"),
        "CODEX_TRUSTED_KEYS": str(tmp / "trusted-keys.txt"),
        "CODEX_BACKEND": "local",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in (
            "CODEX_REPO_DIR",
            "CODEX_STACKS_DIR",
            "CODEX_RELEASES_DIR",
            "CODEX_SIGNING_KEY",
            "CODEX_TRUSTED_KEYS",
        ):
            patch.setenv(key, env[key])
        try:
            yield env, tmp
        finally:
            codexops(env, "down", "--stack", STACK)


def evidence(release: Release) -> Evidence:
    now = datetime.now(UTC)
    return check_evidence(STACK, release, now=now, max_age=timedelta(hours=1), accept_warnings=True)


def test_only_a_real_signed_full_gate_is_evidence_and_its_report_cannot_be_edited(
    stack: tuple[dict[str, str], Path],
) -> None:
    env, tmp = stack
    made = codexops(env, "keys", "init", "--owner", "evidence-test")
    assert made.returncode == 0, made.stderr
    (tmp / "trusted-keys.txt").write_text(made.stdout.strip().splitlines()[-1] + "\n")
    release = build()

    deployed = codexops(env, "deploy", STACK, "--release", release.id, "--reports", str(tmp / "reports"))
    assert deployed.returncode == 0, deployed.stderr
    with pytest.raises(EvidenceRefused, match=f"latest gate of .* on {STACK} was a smoke"):
        evidence(release)

    gated = codexops(env, "gate", "--target", STACK, "--local", "--reports", str(tmp / "reports"))
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert "attestation signed" in gated.stdout
    accepted = evidence(release)
    report = json.loads(accepted.report.read_text())
    assert (report["shape"], report["scale"], report["target_rps"]) == ("gate", 1.0, SUITE_LOAD["targetRps"])
    assert report["release"] == {"id": release.id, "digest": release.digest}
    assert report["achieved_rps"] > 0
    assert accepted.verdict == report["verdict"] and accepted.signer == "evidence-test"
    envelope = accepted.report.parent / attestation.ENVELOPE
    assert accepted.digest == attestation.envelope_digest(envelope)
    print(f"gate {report['verdict']}: {report['achieved_rps']} of {report['target_rps']} RPS; {accepted}")

    edited = {**report, "achieved_rps": 2 * SUITE_LOAD["targetRps"]}  # a better figure than measured
    accepted.report.write_text(json.dumps(edited, indent=2))
    with pytest.raises(EvidenceRefused, match=r"report\.json was edited after it was signed"):
        evidence(release)
