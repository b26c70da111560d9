"""`codexops history` shows evidence as verified only when it verifies: a real promotion's commit is
VERIFIED, a hand commit with forged trailers is UNVERIFIED (and says why), a break-glass is shown as
such, and no field printed can start a line of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from codexops.cli import cli
from codexops.releases import desired, promote, timeline
from codexops.releases.history import Event, append
from infra.spec import BreakGlass
from tests.support.evidence import commit_evidence
from tests.support.fake_backend import FakeBackend, make_release
from tests.support.gitrepo import git

FORGED = "sha256:" + "0" * 64


@pytest.fixture
def repo(store: Path) -> Path:
    """The stack files' throw-away repository (tests/unit/conftest.py: stacks, store, trusted signer)."""
    return desired.repo_dir()


def commits() -> list[dict[str, str]]:
    return [row for row in timeline.merged("production") if row["kind"] == "commit"]


def hand_commit(repo: Path, release_id: str, trailers: str) -> None:
    desired.write("production", desired.Desired(release_id, None))
    git(repo, "commit", "--quiet", "-am", f"promote {release_id} to production (from staging)\n\n{trailers}")


def test_a_promotion_with_its_evidence_is_verified(repo: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path / "releases", "1.0.1", "a")
    commit_evidence("production", release)
    assert (
        promote.change(FakeBackend(), "production", release, kind="promote", reports=tmp_path, say=print).exit_code == 0
    )
    [row] = commits()
    assert row["verdict"] == "VERIFIED" and "PASS full gate on staging" in row["evidenceCheck"]


def test_a_hand_commit_with_forged_trailers_is_unverified(repo: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path / "releases", "1.0.2", "b")
    hand_commit(repo, release.id, f"Actor: release-bot\nEvidence: {FORGED}")
    [row] = commits()
    assert row["actor"] == "release-bot"  # the trailer is shown as what it is ...
    assert row["verdict"] == "UNVERIFIED"  # ... but its evidence is not taken on its word
    assert row["evidenceCheck"] == f"no evidence/production/{release.id}/ at this commit (the trailer claims {FORGED})"


def test_a_trailer_naming_other_evidence_than_the_committed_one_is_unverified(repo: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path / "releases", "1.0.3", "c")
    commit_evidence("production", release)  # real evidence is there, but the trailer names another
    hand_commit(repo, release.id, f"Evidence: {FORGED}")
    [row] = commits()
    assert row["verdict"] == "UNVERIFIED" and row["evidenceCheck"].startswith(f"the trailer names {FORGED}")


def test_a_commit_without_evidence_on_a_stack_that_requires_it_is_unverified(repo: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path / "releases", "1.0.4", "d")
    hand_commit(repo, release.id, "Actor: someone")
    assert [r["verdict"] for r in commits()] == ["UNVERIFIED"]


def test_a_break_glass_is_shown_as_such(repo: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path / "releases", "1.0.5", "e")
    glass = BreakGlass(release=release.id, reason="payments down, hotfix cannot wait for a gate", by="oncall")
    desired.write("production", desired.Desired(release.id, None, glass))
    git(repo, "commit", "--quiet", "-am", "break glass")
    [row] = commits()
    assert row["verdict"] == "BREAK-GLASS" and "by oncall: payments down" in row["evidenceCheck"]


def test_no_printed_field_can_start_a_line(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = make_release(tmp_path / "releases", "1.0.6", "f")
    hand_commit(repo, release.id, "Actor: someone")
    append(Event("gate", "production", release.id, release.digest, "PASS", detail="ok\nEvidence: sha256:forged\x1b[2J"))
    monkeypatch.setenv("GITHUB_ACTOR", "mallory\nEvidence: sha256:forged")
    append(Event("deploy", "production", release.id, release.digest, "PASS"))
    printed = CliRunner().invoke(cli, ["history", "production"])
    assert printed.exit_code == 0, printed.output
    lines = printed.output.splitlines()
    assert len(lines) == 4  # the header, the commit and the two events: nothing else
    assert not any(line.lstrip().startswith("Evidence") for line in lines) and "\x1b" not in printed.output
    assert "ok\\nEvidence: sha256:forged\\x1b[2J" in printed.output and "mallory\\nEvidence" in printed.output
