"""Promotion on evidence, verified deploys and rollbacks, against a backend without processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codexops.releases import desired, gitops, history, promote, rollback, shipping
from codexops.releases.model import AmbiguousRelease, ReleaseNotFound
from codexops.releases.shipping import Refused
from tests.support.evidence import commit_evidence
from tests.support.fake_backend import FakeBackend, make_release

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("2d", 172800), ("45s", 45), ("1.5", 5400)]
)
def test_parse_age(text: str, seconds: int) -> None:
    assert promote.parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0h", "-1h", "24x", "soon", "366d", "99999999999999999999h"])
def test_parse_age_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="--max-age"):
        promote.parse_age(text)


def run_promote(backend: FakeBackend, tmp_path: Path, commit_only: bool = False) -> shipping.Result:
    return promote.promote(
        backend,
        "staging",
        "production",
        now=datetime.now(UTC),
        max_age=timedelta(hours=24),
        accept_warnings=False,
        reports=tmp_path,
        say=print,
        commit_only=commit_only,
    )


def test_a_gated_release_is_promoted_and_recorded(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    backend = FakeBackend(served={"staging": r2, "production": r1})
    history.record_gate("staging", backend.gate("staging", "gate", tmp_path))
    result = run_promote(backend, tmp_path)
    assert (result.exit_code, result.verdict) == (0, "PASS")
    assert backend.served["production"] == r2
    assert backend.calls[-2:] == ["deploy production 1.0.2+bbbbbbbbbbbb", "gate production smoke since-deploy"]
    kinds = [(e.kind, e.release, e.verdict, e.source) for e in history.read("production")]
    assert kinds == [("gate", r2.id, "PASS", None), ("promote", r2.id, "PASS", "staging")]
    # the desired state: production's file names r2, in a commit carrying release, evidence and who
    assert desired.read("production") == desired.Desired(r2.id, r2.image)
    last = gitops.log("production")[0]
    assert last.subject == f"promote {r2.id} to production (from staging)"
    assert last.trailers["Release"] == r2.id and last.actor == "unit-test"
    assert last.evidence.startswith("sha256:") and len(last.evidence) == 71


def test_a_refused_promotion_leaves_the_destination_untouched(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    backend = FakeBackend(served={"staging": r2, "production": r1}, verdicts={r2.id: "FAIL"})
    history.record_gate("staging", backend.gate("staging", "gate", tmp_path))
    with pytest.raises(Refused, match="FAIL"):
        run_promote(backend, tmp_path)
    assert backend.served["production"] == r1
    assert not [c for c in backend.calls if "production" in c]
    assert [(e.kind, e.verdict) for e in history.read("production")] == [("promote", "REFUSED")]


# INCONCLUSIVE (a starved load generator) leaves the release unverified: it goes back like a FAIL.
@pytest.mark.parametrize(("verdict", "said"), [("FAIL", "failed"), ("INCONCLUSIVE", "was not verified (INCONCLUSIVE)")])
def test_a_release_failing_its_smoke_gate_is_rolled_back(store: Path, tmp_path: Path, verdict: str, said: str) -> None:
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    commit_evidence("production", r1)
    commit_evidence("production", r2)
    backend = FakeBackend(served={"production": r1}, verdicts={r2.id: verdict})
    result = shipping.ship(backend, "production", r2, kind="deploy", reports=tmp_path, say=print)
    assert (result.exit_code, result.verdict) == (1, "FAIL")
    assert f"{r2.id} {said} on production" in result.message
    assert "rolled back to 1.0.1+aaaaaaaaaaaa" in result.message
    assert backend.served["production"] == r1
    kinds = [(e.kind, e.release, e.verdict) for e in history.read("production")]
    gates = [("gate", r2.id, verdict), ("deploy", r2.id, verdict), ("gate", r1.id, "PASS")]
    assert kinds == [*gates, ("rollback", r1.id, "PASS")]  # the rollback passed its own checklist


def test_a_failed_deploy_that_migrated_restores_the_backup(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a", "0001"), make_release(store, "1.0.2", "b", "0002")
    commit_evidence("production", r1)
    commit_evidence("production", r2)
    backend = FakeBackend(served={"production": r1}, failing_deploys={r2.id}, backup_dir=tmp_path)
    result = shipping.ship(backend, "production", r2, kind="deploy", reports=tmp_path, say=print)
    assert result.exit_code == 1 and "database restored from" in result.message
    assert [c.split()[0] for c in backend.calls] == ["deploy", "restore", "deploy", "gate"]
    assert backend.served["production"] == r1


def test_rollback_plan_goes_to_the_previous_desired_state_with_its_backup(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a", "0001"), make_release(store, "1.0.2", "b", "0002")
    commit_evidence("production", r1)
    commit_evidence("production", r2)
    backend = FakeBackend(backup_dir=tmp_path)
    for release in (r1, r2):
        assert promote.change(backend, "production", release, kind="deploy", reports=tmp_path, say=print).exit_code == 0
    plan = rollback.plan(backend, "production", None)  # from the git log of Pulumi.production.yaml
    assert plan.target == r1 and plan.backup is not None and plan.backup.exists()
    commit = rollback.commit_rollback("production", plan.target, "test")
    assert desired.read("production").release == r1.id and gitops.log("production")[0].commit == commit
    event = shipping.roll_back(backend, "production", plan.target, print, reason="test", reports=tmp_path)
    assert event.verdict == "PASS" and "database restored" in event.detail and "smoke load PASS" in event.detail
    assert backend.served["production"] == r1
    with pytest.raises(rollback.NothingToRollBackTo, match="already serves"):
        rollback.plan(backend, "production", r1.id)
    # and forward again by name: no restore needed
    assert rollback.plan(backend, "production", r2.id).backup is None


def test_a_rollback_is_pass_only_when_the_checklist_passes_afterwards(store: Path, tmp_path: Path) -> None:
    r1 = make_release(store, "1.0.1", "a")
    backend = FakeBackend(verdicts={r1.id: "FAIL"})
    event = shipping.roll_back(backend, "production", r1, print, reason="test", reports=tmp_path)
    assert backend.served["production"] == r1  # deployed, but it does not pass its checklist
    assert event.verdict == "FAIL" and "checklist and smoke load FAIL" in event.detail


def test_rollback_without_history_says_what_to_do(store: Path) -> None:
    r1 = make_release(store, "1.0.1", "a")
    with pytest.raises(rollback.NothingToRollBackTo, match="names no release before no release; use --to RELEASE"):
        rollback.plan(FakeBackend(served={"production": r1}), "production", None)


def test_promoting_what_serves_is_a_no_op_and_a_failure_commits_the_revert(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    commit_evidence("production", r1)
    commit_evidence("production", r2)
    backend = FakeBackend(verdicts={r2.id: "FAIL"})
    assert promote.change(backend, "production", r1, kind="deploy", reports=tmp_path, say=print).exit_code == 0
    commits, calls = len(gitops.log("production")), len(backend.calls)
    same = promote.change(backend, "production", r1, kind="promote", reports=tmp_path, say=print)
    assert (same.exit_code, same.verdict) == (0, "NO CHANGE") and "already serves" in same.message
    assert len(gitops.log("production")) == commits and len(backend.calls) == calls  # no commit, no restart
    failed = promote.change(backend, "production", r2, kind="promote", reports=tmp_path, say=print)
    assert failed.exit_code == 1 and "reverted in" in failed.message
    log = gitops.log("production")
    assert [c.state.release for c in log[:3]] == [r1.id, r2.id, r1.id]
    assert log[0].trailers["Reverts"] == log[1].commit
    assert desired.read("production").release == r1.id and backend.served["production"] == r1


def test_rollback_to_a_version_built_once_finds_it_and_one_built_twice_is_refused(store: Path) -> None:
    make_release(store, "1.0.1", "a")
    r2 = make_release(store, "1.0.2", "b")
    assert rollback.find_release("v1.0.2") == r2
    assert rollback.find_release("bbbbbb") == r2
    with pytest.raises(ReleaseNotFound, match=r"no release '9\.9\.9'"):
        rollback.find_release("9.9.9")
    r3 = make_release(store, "1.0.2", "c")  # the same version built again (another env, a dirty tree)
    with pytest.raises(AmbiguousRelease, match=r"'1\.0\.2' matches 2 builds: ") as refused:
        rollback.find_release("1.0.2")
    assert r2.id in str(refused.value) and r3.id in str(refused.value)
    assert rollback.find_release(r3.id) == r3  # the id names one build


def test_a_release_whose_verification_cannot_run_is_rolled_back(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    commit_evidence("production", r1)
    commit_evidence("production", r2)
    backend = FakeBackend(served={"production": r1}, verdicts={r2.id: "CANNOT RUN"})
    result = shipping.ship(backend, "production", r2, kind="deploy", reports=tmp_path, say=print)
    assert result.exit_code == 1 and "could not run: http://production.test does not answer" in result.message
    assert backend.served["production"] == r1
    events = [(e.kind, e.verdict) for e in history.read("production")]
    assert events == [("deploy", "FAIL"), ("gate", "PASS"), ("rollback", "PASS")]


def test_redeploying_the_serving_release_that_fails_is_not_rolled_back_onto_itself(store: Path, tmp_path: Path) -> None:
    r1 = make_release(store, "1.0.1", "a")
    commit_evidence("production", r1)
    backend = FakeBackend(served={"production": r1}, verdicts={r1.id: "FAIL"})
    result = shipping.ship(backend, "production", r1, kind="deploy", reports=tmp_path, say=print)
    assert result.exit_code == 1 and "no earlier release on production" in result.message
    assert backend.calls == ["deploy production 1.0.1+aaaaaaaaaaaa", "gate production smoke since-deploy"]


def test_promote_commit_only_commits_and_deploys_nothing(store: Path, tmp_path: Path) -> None:
    r1, r2 = make_release(store, "1.0.1", "a"), make_release(store, "1.0.2", "b")
    backend = FakeBackend(served={"staging": r2, "production": r1})
    history.record_gate("staging", backend.gate("staging", "gate", tmp_path))
    result = run_promote(backend, tmp_path, commit_only=True)
    assert (result.exit_code, result.verdict) == (0, "COMMITTED") and "codexops sync production" in result.message
    assert desired.read("production").release == r2.id and backend.served["production"] == r1
    assert not [c for c in backend.calls if "production" in c]  # the merge of its pull request deploys


def test_a_rollback_is_judged_by_its_checklist_and_load_not_by_alerts_of_the_release_it_left() -> None:
    from codexops.gate import GateReport, Step

    def report(*statuses: tuple[str, str]) -> GateReport:
        steps = [Step(name, status, 1.0) for name, status in statuses]
        return GateReport("production", "production", "http://x", "t", verdict="FAIL", steps=steps)

    firing = report(("checklist", "pass"), ("load", "pass"), ("alerts", "fail"))
    assert not shipping.rollback_failed(firing)  # the alerts computed from the bad release's samples
    assert shipping.rollback_failed(report(("checklist", "fail"), ("load", "pass"), ("alerts", "pass")))
    assert shipping.rollback_failed(report(("checklist", "pass"), ("load", "fail"), ("alerts", "pass")))
