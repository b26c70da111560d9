"""Evidence for a release as `codexops promote` commits it: a full gate of its digest on the source stack,
written and signed by the gate's own code (the caller's CODEX_SIGNING_KEY, trusted by CODEX_TRUSTED_KEYS),
copied under evidence/<stack>/<release>/ of the repository and committed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codexops import signing
from codexops.releases import admission, desired
from codexops.releases.attestation import ENVELOPE, REPORT
from codexops.releases.model import Release
from tests.support.fake_backend import write_full_gate
from tests.support.gitrepo import git


def commit_evidence(stack: str, release: Release, *, source: str = "staging", verdict: str = "PASS") -> Path:
    """The folder committed; the door (codexops/releases/admission.py) then admits `release` to `stack`."""
    repo = desired.repo_dir()
    gate = repo.parent / f"gate-{source}-{release.short_digest}"
    write_full_gate(gate, source, {"id": release.id, "digest": release.digest}, verdict)
    folder = admission.evidence_dir(stack, release.id, repo)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (ENVELOPE, REPORT):
        shutil.copyfile(gate / name, folder / name)
    note = {"release": release.id, "source": source, "verdict": verdict, "acceptWarnings": verdict == "WARN"}
    (folder / admission.PROMOTION).write_text(json.dumps(note))
    git(repo, "add", str(folder.relative_to(repo)))
    git(repo, "commit", "--quiet", "-m", f"evidence of {release.id} for {stack}", "--", str(folder.relative_to(repo)))
    return folder


def trust_a_signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: str = "unit-test") -> None:
    """An operator's signing key (CODEX_SIGNING_KEY) that the repository trusts (CODEX_TRUSTED_KEYS)."""
    monkeypatch.setenv("CODEX_SIGNING_KEY", str(tmp_path / "key" / "signing-key"))
    monkeypatch.setenv("CODEX_TRUSTED_KEYS", str(tmp_path / "trusted-keys.txt"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    key = signing.create_key(signing.signing_key_path())
    (tmp_path / "trusted-keys.txt").write_text(signing.public_line(key, owner) + "\n")
