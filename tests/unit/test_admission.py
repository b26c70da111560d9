"""The door (codexops/releases/admission.py) against a backend without processes: what production's spec
requires, what a deploy or rollback without it does (nothing), and the break-glass that is the one way
around it. The same door on real stacks: tests/releases/test_gitops.py; at `pulumi up`:
tests/policies/test_release.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codexops.releases import admission, desired, gitops, history, promote, rollback, shipping
from tests.support.evidence import commit_evidence
from tests.support.fake_backend import FakeBackend, make_release


def deploy(backend: FakeBackend, release: object, tmp_path: Path, **extra: object) -> shipping.Result:
    return promote.change(backend, "production", release, kind="deploy", reports=tmp_path, say=print, **extra)  # type: ignore[arg-type]


def test_production_requires_a_gate_on_staging_and_staging_requires_none(store: Path) -> None:
    assert admission.required_source("production") == "staging"
    assert admission.required_source("staging") is None
    release = make_release(store, "1.0.1", "a")
    assert admission.admit("staging", release).how == "not required"
    with pytest.raises(admission.NotAdmitted, match="is not in the repository"):
        admission.admit("production", release)
    commit_evidence("production", release)
    assert admission.admit("production", release).how == "evidence"


def test_a_deploy_without_evidence_is_refused_before_anything_is_written(store: Path, tmp_path: Path) -> None:
    release = make_release(store, "1.0.1", "a")
    backend, commits = FakeBackend(), len(gitops.log("production"))
    with pytest.raises(shipping.Refused, match=re.escape(f"{release.id} may not run on production")):
        deploy(backend, release, tmp_path)
    assert backend.calls == [] and len(gitops.log("production")) == commits
    assert not gitops.uncommitted(desired.path_of("production"))  # the file as it was


def test_a_warn_gate_counts_only_when_its_promotion_accepted_it(store: Path) -> None:
    release = make_release(store, "1.0.1", "a")
    folder = commit_evidence("production", release, verdict="WARN")
    assert admission.admit("production", release).how == "evidence"
    (folder / admission.PROMOTION).write_text('{"acceptWarnings": false}')
    with pytest.raises(admission.NotAdmitted, match="a WARN gate that no promotion accepted"):
        admission.admit("production", release)


def test_a_failed_gate_is_never_evidence(store: Path) -> None:
    release = make_release(store, "1.0.1", "a")
    commit_evidence("production", release, verdict="FAIL")
    with pytest.raises(admission.NotAdmitted, match="is a FAIL gate"):
        admission.admit("production", release)


def test_an_inconclusive_gate_is_never_evidence(store: Path) -> None:
    release = make_release(store, "1.0.1", "a")
    folder = commit_evidence("production", release, verdict="INCONCLUSIVE")
    (folder / admission.PROMOTION).write_text('{"acceptWarnings": true}')  # not even with warnings accepted
    with pytest.raises(admission.NotAdmitted, match="is a INCONCLUSIVE gate"):
        admission.admit("production", release)


def test_break_glass_says_why_is_written_into_the_file_and_shipped(store: Path, tmp_path: Path) -> None:
    release = make_release(store, "1.0.1", "a")
    with pytest.raises(ValueError, match="say why in a sentence"):
        deploy(FakeBackend(), release, tmp_path, break_glass="   now ")
    backend = FakeBackend()
    result = deploy(backend, release, tmp_path, break_glass="payments down,\nhotfix cannot wait")
    assert result.exit_code == 0 and backend.served["production"] == release
    glass = desired.read("production").break_glass
    assert glass is not None and (glass.release, glass.reason, glass.by) == (
        release.id,
        "payments down, hotfix cannot wait",  # one line
        "unit-test",
    )
    last = gitops.log("production")[0]
    assert last.trailers["Break-Glass"] == "payments down, hotfix cannot wait" and not last.evidence
    shipped = [e for e in history.read("production") if e.kind == "deploy"][-1]
    assert shipped.detail.startswith("BREAK-GLASS by unit-test: payments down")  # loud in every line it caused


def test_a_promotion_with_evidence_ends_a_break_glass(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    backend = FakeBackend()
    deploy(backend, r1, tmp_path, break_glass="first release before any gate ran")
    commit_evidence("production", r2)
    assert deploy(backend, r2, tmp_path).exit_code == 0
    assert desired.read("production").break_glass is None and gitops.log("production")[0].evidence


def test_rollback_needs_evidence_or_the_break_glass_it_ran_under(store: Path, tmp_path: Path) -> None:
    r1, r2, r3 = (make_release(store, f"1.0.{n}", c) for n, c in ((1, "a"), (2, "b"), (3, "c")))
    backend = FakeBackend()
    deploy(backend, r1, tmp_path, break_glass="the first release, before the evidence store")
    commit_evidence("production", r2)
    deploy(backend, r2, tmp_path)
    # back to r1: it ran here by break-glass, so the rollback records that decision again
    plan = rollback.plan(backend, "production", None)
    assert plan.target == r1 and plan.break_glass is not None
    assert plan.break_glass.reason.startswith("rollback to a release that ran here by break-glass: the first")
    # to r3, which never ran here and has no evidence: refused, unless broken glass says why
    with pytest.raises(admission.NotAdmitted, match=re.escape(f"{r3.id} may not run on production")):
        rollback.plan(backend, "production", r3.id)
    forced = rollback.plan(backend, "production", r3.id, break_glass="r3 is the only build without the bug")
    assert forced.break_glass is not None and forced.break_glass.reason == "r3 is the only build without the bug"
    # to r2, whose evidence is committed: no override
    backend.served["production"] = r1
    desired.write("production", desired.Desired(r1.id, r1.image))
    assert rollback.plan(backend, "production", r2.id).break_glass is None


def test_a_promotion_repeated_before_it_served_commits_nothing_new(store: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    r1 = make_release(store, "1.0.1", "a")
    backend = FakeBackend(served={"staging": r1})
    history.record_gate("staging", backend.gate("staging", "gate", tmp_path))

    def again() -> shipping.Result:
        return promote.promote(
            backend, "staging", "production", now=datetime.now(UTC), max_age=timedelta(hours=1),
            accept_warnings=False, reports=tmp_path, say=print, commit_only=True,
        )  # fmt: skip

    assert again().verdict == "COMMITTED"
    commits = len(gitops.log("production"))
    # killed before production served it: the same promotion again writes the same evidence, commits nothing
    repeated = again()
    assert repeated.verdict == "COMMITTED" and "already" in repeated.message
    assert len(gitops.log("production")) == commits and not gitops.uncommitted(desired.path_of("production"))
