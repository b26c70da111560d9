"""release-has-committed-evidence: `pulumi up` of production refuses a release whose signed full gate on
staging is not committed under evidence/production/<release>/ (one compliant program, one change per
message), and the same door admits it once the evidence, or a recorded break-glass, is there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codexops import signing
from codexops.releases import admission, desired
from codexops.releases.attestation import ENVELOPE, REPORT
from infra.mock_runtime import declare, with_release
from infra.spec import BreakGlass, load_spec
from policies.evaluate import messages, stack_args
from policies.release import POLICIES
from tests.support.evidence import commit_evidence, trust_a_signer
from tests.support.gitrepo import git, stack_repo

POLICY = POLICIES[0]
RELEASE = "1.4.0+abcdefabcdef"
Resources = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = stack_repo(tmp_path / "repo")
    monkeypatch.setenv("CODEX_REPO_DIR", str(path))
    monkeypatch.setenv("GITHUB_ACTOR", "policy-test")
    trust_a_signer(tmp_path, monkeypatch)
    return path


def program(stack: str, release: str | None = RELEASE) -> Resources:
    spec = with_release(load_spec(stack)).model_copy(update={"release": release})
    return [(r.type, r.name, dict(r.inputs)) for r in declare(spec).custom()]


def image_of(resources: Resources) -> str:
    deployment = next(p for t, n, p in resources if t.endswith("Deployment") and n == "app")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def found(resources: Resources, stack: str = "production") -> list[str]:
    return messages(POLICY, stack_args(resources, stack))


def evidence_for(resources: Resources, stack: str = "production") -> Path:
    image = image_of(resources)
    return commit_evidence(stack, admission.named_release(RELEASE, image.rpartition("@")[2], image))


def test_production_with_its_evidence_committed_passes(repo: Path) -> None:
    resources = program("production")
    evidence_for(resources)
    assert found(resources) == []


def test_staging_needs_no_evidence(repo: Path) -> None:
    assert found(program("staging"), "staging") == []


def test_a_release_without_its_evidence_is_refused(repo: Path) -> None:
    [message] = found(program("production"))
    assert message.startswith(f"app: {RELEASE} may not run on production: the evidence of {RELEASE}")
    assert "is not in the repository" in message and "codexops promote --from staging --to production" in message


def test_evidence_of_another_digest_is_refused(repo: Path) -> None:
    resources = program("production")
    evidence_for(resources)
    other = [
        (t, n, json.loads(json.dumps(p).replace(image_of(resources).rpartition("@")[2], "sha256:" + "9" * 64)))
        for t, n, p in resources
    ]
    [message] = found(other)
    assert "it is another release's gate" in message


def test_an_edited_committed_report_is_refused(repo: Path) -> None:
    resources = program("production")
    folder = evidence_for(resources)
    report = json.loads((folder / REPORT).read_text())
    (folder / REPORT).write_text(json.dumps({**report, "verdict": "PASS", "edited": True}))
    [message] = found(resources)
    assert "report.json was edited after it was signed" in message


def test_evidence_signed_by_an_untrusted_key_is_refused(repo: Path, tmp_path: Path) -> None:
    resources = program("production")
    evidence_for(resources)
    stranger = signing.create_key(tmp_path / "stranger")
    (tmp_path / "trusted-keys.txt").write_text(signing.public_line(stranger, "stranger") + "\n")
    [message] = found(resources)
    assert "the attestation is signed by a key" in message and "does not list" in message


def test_a_forged_envelope_is_refused(repo: Path) -> None:
    resources = program("production")
    folder = evidence_for(resources)
    envelope = json.loads((folder / ENVELOPE).read_text())
    envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
    (folder / ENVELOPE).write_text(json.dumps(envelope))
    [message] = found(resources)
    assert "does not verify" in message or "cannot be read" in message


def test_a_program_naming_no_release_is_refused(repo: Path) -> None:
    [message] = found(program("production", release=None))
    assert message == "app: production requires evidence from staging, but the app names no release (CODEX_RELEASE)"


def test_an_image_not_by_digest_is_refused(repo: Path) -> None:
    rendered = program("production")
    image = image_of(rendered)
    resources = [(t, n, json.loads(json.dumps(p).replace(image, "ghcr.io/x/app:latest"))) for t, n, p in rendered]
    [message] = found(resources)
    assert "is not by digest" in message


def test_a_urn_without_a_stack_is_refused(repo: Path) -> None:
    [message] = found(program("production"), stack="")
    assert message == "app: its URN names no stack, so the evidence it needs cannot be known"


def test_a_break_glass_in_the_stack_file_admits_that_release_only(repo: Path) -> None:
    resources = program("production")
    glass = BreakGlass(release=RELEASE, reason="database failover needs the hotfix now", by="policy-test")
    desired.write("production", desired.Desired(RELEASE, image_of(resources), glass))
    git(repo, "commit", "--quiet", "-am", "break glass")
    assert found(resources) == []
    other = BreakGlass(release="1.3.0+000000000000", reason="an older emergency, another release", by="x")
    desired.write("production", desired.Desired(RELEASE, image_of(resources), other))
    assert len(found(resources)) == 1
