"""The desired state in Git: editing a stack file line by line, reading its git log back, and sync/diff
against a backend without processes (the real-process flow is tests/releases/test_promotion.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from codexops.releases import admission, attestation, desired, gitops, history, named, promote, shipping, sync, timeline
from codexops.releases.desired import Desired, StackFileError
from codexops.releases.history import Event
from infra.spec import ROOT, load_spec
from tests.support.evidence import commit_evidence, trust_a_signer
from tests.support.fake_backend import FakeBackend, make_release
from tests.support.gitrepo import git, stack_repo

DIGEST = "ghcr.io/living-codex/living-codex@sha256:" + "c" * 64


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.setenv("CODEX_RELEASES_DIR", str(tmp_path / "releases"))
    monkeypatch.setenv("GITHUB_ACTOR", "desired-test")
    trust_a_signer(tmp_path, monkeypatch)  # production admits a release on its committed, signed evidence
    path = stack_repo(tmp_path / "repo")
    monkeypatch.setenv("CODEX_REPO_DIR", str(path))
    return path


def test_setting_the_release_keeps_every_comment_and_line(repo: Path) -> None:
    path = repo / "Pulumi.production.yaml"
    before = path.read_text()
    assert desired.read("production") == Desired(None, None)  # nothing promoted yet: no release, no image
    assert desired.write("production", Desired("0.1.0+0123456789ab", DIGEST))
    after = path.read_text()
    added = set(after.splitlines()) - set(before.splitlines())
    assert added == {"  living-codex:release: 0.1.0+0123456789ab", f"  living-codex:image: {DIGEST}"}
    assert len(after.splitlines()) == len(before.splitlines()) + 2  # two lines added, nothing else changed
    assert [line for line in before.splitlines() if line.lstrip().startswith("#")] == [
        line for line in after.splitlines() if line.lstrip().startswith("#")
    ]
    assert load_spec("production", repo).release == "0.1.0+0123456789ab"  # the typed spec reads it
    assert load_spec("production", repo).image == DIGEST
    assert not desired.write("production", Desired("0.1.0+0123456789ab", DIGEST))  # same: nothing written
    assert desired.write("production", Desired(None, None))  # the release line removed; the image stays
    kept = set(path.read_text().splitlines()) - set(before.splitlines())
    assert (
        kept == {f"  living-codex:image: {DIGEST}"}
        and len(path.read_text().splitlines()) == len(before.splitlines()) + 1
    )


def test_a_trailing_comment_on_the_line_survives_and_odd_values_are_refused() -> None:
    text = "config:\n  living-codex:replicas: 2\n  living-codex:release: 0.1.0+aaaaaaaaaaaa  # promoted by x\n"
    new = desired.set_key(text, desired.RELEASE_KEY, "0.1.0+bbbbbbbbbbbb")
    assert new == text.replace("aaaaaaaaaaaa", "bbbbbbbbbbbb")
    for value in ("a b", "x#y", "'q'"):
        with pytest.raises(StackFileError, match="not a plain value"):
            desired.set_key(text, desired.RELEASE_KEY, value)
    with pytest.raises(StackFileError, match="no 'config:' map"):
        desired.set_key("name: x\n", desired.RELEASE_KEY, "1")


def test_a_stack_without_a_release_is_a_valid_spec() -> None:
    assert load_spec("staging", ROOT).release is None  # nothing promoted yet


def test_the_git_log_gives_release_evidence_and_who_and_a_hand_revert_counts(repo: Path) -> None:
    store = Path(str(repo.parent / "releases"))
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    backend = FakeBackend()
    for release in (r1, r2):
        commit_evidence("production", release)
        result = promote.change(backend, "production", release, kind="promote", reports=repo, say=print)
        assert result.exit_code == 0
    git(repo, "revert", "--no-edit", "HEAD")  # by hand: no trailers
    log = gitops.log("production")
    assert [c.state.release for c in log] == [r1.id, r2.id, r1.id, None]
    assert log[0].subject.startswith('Revert "promote 1.0.2') and log[0].actor == "Test Operator"
    signed = "sha256:" + attestation.sha256_file(admission.evidence_dir("production", r2.id) / attestation.ENVELOPE)
    assert (log[1].evidence, log[1].actor, log[1].trailers["Release-Commit"]) == (signed, "desired-test", "c0ffee")
    assert gitops.release_commit(r2.id) == "c0ffee"
    assert gitops.release_commit("9.9.9+000000000000") is None
    assert gitops.previous_state("production") == Desired(r2.id, r2.image)
    rows = timeline.merged("production")
    commits = [r for r in rows if r["kind"] == "commit"]
    assert [r["release"] for r in commits] == [r1.id, r2.id, r1.id]  # oldest first, release changes only
    assert commits[1]["evidence"] == signed and f"evidence {signed}" in timeline.note(commits[1])
    assert {r["kind"] for r in rows} == {"commit", "promote", "gate"}


def test_sync_and_diff_follow_the_file(repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "releases"
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    backend = FakeBackend()
    said: list[str] = []
    nothing = sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=said.append)
    assert nothing[:2] == (0, "NOTHING TO SYNC") and "names no release yet" in nothing[2]
    assert sync.diff(backend, "production").exit_code == 0 and not backend.calls
    desired.write("production", Desired(r1.id, r1.image))  # by hand, not yet committed
    drift = sync.diff(backend, "production")
    assert (
        drift.exit_code == 1 and f"names {r1.id} (uncommitted" in drift.message and "serves no release" in drift.message
    )
    with pytest.raises(StackFileError, match="uncommitted changes: commit them"):
        sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=said.append)
    with pytest.raises(StackFileError, match="uncommitted changes"):
        promote.change(backend, "production", r2, kind="deploy", reports=tmp_path, say=print)
    git(repo, "commit", "--quiet", "-am", "production runs r1")
    # a committed hand edit naming a release without its evidence: the door refuses it, nothing starts
    with pytest.raises(shipping.Refused, match=re.escape(f"{r1.id} may not run on production: the evidence of")):
        sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=said.append)
    assert not backend.calls and history.read("production")[-1].verdict == "REFUSED"
    commit_evidence("production", r1)
    commit_evidence("production", r2)
    code, verdict, _ = sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=said.append)
    assert (code, verdict) == (0, "PASS") and backend.served["production"] == r1
    assert sync.diff(backend, "production").exit_code == 0
    calls = len(backend.calls)
    again = sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=said.append)
    assert again[:2] == (0, "IN SYNC") and len(backend.calls) == calls  # idempotent: nothing restarted
    assert history.read("production")[-1].kind == "sync"
    desired.write("production", Desired(r2.id, r2.image))
    git(repo, "commit", "--quiet", "-am", "production runs r2")
    backend.verdicts[r2.id] = "FAIL"  # a sync failing its verification puts back what served, and says so
    failed = sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=said.append)
    assert failed[:2] == (1, "FAIL") and f"still names {r2.id}: revert that commit" in failed[2]
    assert backend.served["production"] == r1 and sync.diff(backend, "production").exit_code == 1


def test_sync_asks_before_restoring_a_backup(repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "releases"
    r1 = make_release(store, "1.0.1", "a", "0001")
    commit_evidence("production", r1)
    backup = tmp_path / "before-0002.dump"
    backup.write_text("dump")
    history.append(Event("deploy", "production", r1.id, r1.digest, "PASS"))
    history.append(Event("deploy", "production", "1.0.2+bbbbbbbbbbbb", "sha256:b", "PASS", backup=str(backup)))
    desired.write("production", Desired(r1.id, r1.image))
    git(repo, "commit", "--quiet", "-am", "production runs r1")
    asked: list[Path] = []
    backend = FakeBackend()
    assert sync.sync(backend, "production", confirm=asked.append, reports=tmp_path, say=print)[0] == 0
    assert asked == [backup] and backend.calls[0] == f"restore production {backup.name}"
    # forward to a release that never served here: nothing restored, nothing asked
    r3 = make_release(store, "1.0.3", "e", "0003")
    commit_evidence("production", r3)
    desired.write("production", Desired(r3.id, r3.image))
    git(repo, "commit", "--quiet", "-am", "production runs r3")
    history.append(Event("deploy", "production", "1.0.2+bbbbbbbbbbbb", "sha256:b", "PASS", backup=str(backup)))
    asked.clear()
    assert sync.sync(backend, "production", confirm=asked.append, reports=tmp_path, say=print)[0] == 0
    assert asked == [] and backend.served["production"] == r3


def test_a_release_missing_from_the_store_says_what_is_missing(repo: Path, tmp_path: Path) -> None:
    desired.write("production", Desired("0.1.0+dddddddddddd", None))
    git(repo, "commit", "--quiet", "-am", "production runs an unknown release")
    with pytest.raises(named.ReleaseMissing, match="no commit in Git names a clean source commit"):
        sync.sync(FakeBackend(), "production", confirm=lambda _: None, reports=tmp_path, say=print)
    store = tmp_path / "releases"
    r1 = make_release(store, "1.0.1", "a")  # its commit, c0ffee, is not in this repository
    promote.change(FakeBackend(), "staging", r1, kind="deploy", reports=tmp_path, say=print)
    (store / f"1.0.1-{r1.short_digest}" / "release.json").unlink()
    desired.write("production", Desired(r1.id, r1.image))
    git(repo, "commit", "--quiet", "-am", "production runs r1")
    with pytest.raises(named.ReleaseMissing, match="its commit c0ffee is not in"):
        sync.sync(FakeBackend(), "production", confirm=lambda _: None, reports=tmp_path, say=print)


def test_an_actor_with_a_newline_cannot_add_a_trailer(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "mallory\nEvidence: sha256:forged")
    release = make_release(Path(str(repo.parent / "releases")), "1.0.1", "a")
    commit_evidence("production", release)
    assert promote.change(FakeBackend(), "production", release, kind="deploy", reports=repo, say=print).exit_code == 0
    last = gitops.log("production")[0]
    assert last.actor == "mallory Evidence: sha256:forged" and "forged" not in last.evidence  # the real digest


COMMITTER = """
import sys
from pathlib import Path
from codexops.releases import gitops
repo, name = Path(sys.argv[1]), sys.argv[2]
for index in range(12):
    (repo / name).write_text(f"{index}\\n")
    gitops.commit_file(repo, repo / name, f"{name} {index}")
"""


def test_deploys_of_two_stacks_side_by_side_both_commit(repo: Path) -> None:
    """Each deploy commits its stack file: two at once, with reads beside them, all land (without the
    commit lock, one `git add` found the other's index.lock and the deploy failed: a CI run, 2026-12-07)."""
    committers = [
        subprocess.Popen([sys.executable, "-c", COMMITTER, str(repo), name], cwd=ROOT, stderr=subprocess.PIPE)
        for name in ("a.txt", "b.txt")
    ]
    while any(c.poll() is None for c in committers):
        gitops.uncommitted(repo / "Pulumi.staging.yaml")  # a read, as diff and require_committed do
    assert [c.wait() for c in committers] == [0, 0], [c.stderr.read() for c in committers if c.stderr]
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert {f"{name} {index}" for name in ("a.txt", "b.txt") for index in range(12)} <= set(subjects)
