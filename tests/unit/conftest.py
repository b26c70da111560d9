"""The release store, stacks folder and stack-file repository a backend-without-processes test works in,
with a signing key the repository trusts (production admits a release on its committed, signed evidence)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.evidence import trust_a_signer
from tests.support.gitrepo import stack_repo

ACTOR = "unit-test"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The release store (CODEX_RELEASES_DIR); the stack files are a throw-away repository's."""
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.setenv("CODEX_RELEASES_DIR", str(tmp_path / "releases"))
    monkeypatch.setenv("CODEX_REPO_DIR", str(stack_repo(tmp_path / "repo")))
    monkeypatch.setenv("GITHUB_ACTOR", ACTOR)
    trust_a_signer(tmp_path, monkeypatch, ACTOR)
    return tmp_path / "releases"
