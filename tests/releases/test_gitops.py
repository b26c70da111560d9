"""The desired state in Git on two real local stacks (tests/support/two_stacks.py): a fresh clone with an
empty release store syncs a stack by building the named release from its commit; a schema-moving release
forced onto production by break-glass is backed up and `rollback` (a commit back to the previous desired
state) restores it; a hand-edited production file naming a release without evidence is refused by `sync`
and `deploy`, and synced once its evidence is committed; `git revert` + `sync` rolls back; a committed settings change
(thresholds, replicas) is drift that `sync` applies, two commits at once after a missed run.

Both stacks start on the good release, committed as their desired state (production's with evidence, as
`promote` commits it: a signed full-gate attestation; the real gate-and-promote flow is
test_promotion.py); each test starts from there (`good_everywhere`), whatever ran before it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codexops import localenv
from codexops.releases import desired
from codexops.releases.local_backend import LocalBackend
from codexops.releases.promote import change
from infra.spec import load_spec
from tests.support.evidence import commit_evidence
from tests.support.gitrepo import git
from tests.support.releases import build, copy_with_migration
from tests.support.two_stacks import STACKS, Builder, World, two_stacks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gitops")
    builders: dict[str, Builder] = {
        "good": build,  # from the clone's HEAD: a fresh clone can build it again from that commit
        "other": lambda repo: build(repo, RELEASE_TEST_TAG="other"),  # like good, another digest
        "migrating": lambda _: build(copy_with_migration(tmp / "tree", revision="9001")),  # one migration ahead
    }
    with two_stacks(tmp, builders) as world:
        with ThreadPoolExecutor(len(STACKS)) as pool:
            outcomes = list(pool.map(lambda stack: LocalBackend().deploy(stack, world.good, print), STACKS))
        assert all(outcome.ok for outcome in outcomes), [outcome.detail for outcome in outcomes]
        commit_evidence("production", world.good)
        for stack in STACKS:  # committed as deploy commits it: its trailers name the source commit
            committed = change(
                LocalBackend(), stack, world.good, kind="deploy", reports=tmp / "reports", say=print, commit_only=True
            )
            assert committed.verdict == "COMMITTED", committed.message
        yield world


@pytest.fixture(autouse=True)
def good_everywhere(world: World) -> None:
    """Both stacks named and serving good: each test leaves them so; after a failed one, deployed again."""
    for stack in STACKS:
        world.on_release(stack, world.good)


def test_a_fresh_clone_syncs_a_stack_building_the_named_release_from_its_commit(world: World) -> None:
    # staging serves another release, deployed outside Git; its file still names good
    assert LocalBackend().deploy("staging", world.releases["other"], print).ok
    assert world.named("staging") == world.good.id
    fresh = world.tmp / "fresh"
    subprocess.run(["git", "clone", "--quiet", str(world.repo), str(fresh)], check=True)
    env = {**world.env, "CODEX_REPO_DIR": str(fresh), "CODEX_RELEASES_DIR": str(world.tmp / "empty-store")}
    clone = World(world.tmp, env, fresh, world.releases)
    assert clone.run("codexops", "diff", "staging").returncode == 1
    synced = clone.run("codexops", "sync", "staging")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert f"building it from commit {world.good.commit}" in synced.stdout
    assert (world.tmp / "empty-store" / f"{world.good.version}-{world.good.short_digest}").is_dir()
    assert world.health("staging").json()["version"] == world.good.id
    assert clone.run("codexops", "diff", "staging").returncode == 0


def test_a_schema_moving_release_is_backed_up_and_rollback_restores_it(world: World) -> None:
    production = localenv.local_stack("production")

    def sql(statement: str) -> str:
        return localenv.sql(production, statement, "livingcodex")

    migrating = world.releases["migrating"].id
    refused = world.run("codexops", "deploy", "production", "--release", migrating)
    assert refused.returncode == 1 and f"refused: {migrating} may not run on production" in refused.stderr
    why = "the release test forces a schema change onto production"
    deployed = world.run("codexops", "deploy", "production", "--release", migrating, "--break-glass", why)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "(BREAK-GLASS)" in deployed.stdout and desired.read("production", world.repo).break_glass is not None
    glass = world.run("codexops", "diff", "production")  # reported until a release with evidence replaces it
    assert glass.returncode == 1 and f"by BREAK-GLASS by release-test: {why}" in glass.stdout
    assert sql("SELECT version_num FROM alembic_version") == "9001"
    backup = world.history("production")[-1]["backup"]
    assert backup and Path(backup).stat().st_size > 0
    sql("INSERT INTO release_probe_9001 (id) VALUES (1)")  # a write the rollback discards

    unconfirmed = world.run("runbooks/rollback.sh")
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    assert sql("SELECT version_num FROM alembic_version") == "9001"

    rolled = world.run("runbooks/rollback.sh", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert f"database restored from {backup}" in rolled.stdout
    assert sql("SELECT version_num FROM alembic_version") == world.good.schema_head
    assert sql("SELECT to_regclass('public.release_probe_9001')") == ""
    assert world.health("production").json()["version"] == world.good.id
    last = world.history("production")[-1]
    assert (last["kind"], last["release"], last["verdict"]) == ("rollback", world.good.id, "PASS")
    assert "checklist and smoke load PASS" in last["detail"]
    # the rollback is a commit back to production's previous desired state (from its git log), whose
    # evidence is committed: the break-glass ends with it
    assert world.named("production") == world.good.id
    assert desired.read("production", world.repo).break_glass is None
    assert world.run("codexops", "diff", "production").returncode == 0


def test_a_hand_edited_file_without_evidence_is_refused_and_synced_once_its_evidence_is_committed(
    world: World,
) -> None:
    other = world.releases["other"]
    desired.write("production", desired.Desired(other.id, None), world.repo)  # as in an editor
    uncommitted = world.run("codexops", "sync", "production")
    assert uncommitted.returncode == 2 and "uncommitted changes: commit them" in uncommitted.stderr
    git(world.repo, "commit", "--quiet", "-am", f"production runs {other.id}")
    drift = world.run("codexops", "diff", "production")
    assert drift.returncode == 1
    assert f"Pulumi.production.yaml names {other.id}; production serves {world.good.id}" in drift.stdout
    # the everyday GitOps path (edit, merge, sync) passes the same door as promote: no evidence, no deploy
    commits = world.commits()
    for command in (("sync", "production"), ("deploy", "production", "--release", other.id)):
        refused = world.run("codexops", *command)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"refused: {other.id} may not run on production: the evidence of {other.id}" in refused.stderr
        assert "codexops promote --from staging --to production" in refused.stderr
    assert world.commits() == commits and world.health("production").json()["version"] == world.good.id
    assert world.history("production")[-1]["verdict"] == "REFUSED"

    commit_evidence("production", other)  # what `promote` commits: then the same sync deploys it
    synced = world.run("codexops", "sync", "production")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "admitted to production by evidence: PASS full gate on staging" in synced.stdout
    assert world.health("production").json()["version"] == other.id
    assert world.run("codexops", "diff", "production").returncode == 0
    idle = world.run("codexops", "sync", "production")  # idempotent
    assert idle.returncode == 0 and "IN SYNC" in idle.stdout and "nothing to do" in idle.stdout

    git(world.repo, "revert", "--no-edit", "HEAD~1")  # the manual rollback: revert the edit, sync
    assert world.run("codexops", "diff", "production").returncode == 1
    back = world.run("codexops", "sync", "production")
    assert back.returncode == 0, back.stdout + back.stderr
    assert world.health("production").json()["version"] == world.good.id
    assert world.run("codexops", "diff", "production").returncode == 0
    rows = world.timeline("production")
    assert rows[-1]["kind"] == "sync" and rows[-1]["release"] == world.good.id
    assert any(r["kind"] == "commit" and r["detail"].startswith('Revert "production runs') for r in rows)


def test_a_committed_settings_change_is_drift_and_sync_applies_it_even_after_a_missed_run(world: World) -> None:
    path = world.repo / "Pulumi.staging.yaml"
    original = path.read_text()
    running = load_spec("staging", world.repo).thresholds.memoryUsagePercent  # the file's, or the default
    warning, critical = running.warning - 5, running.critical - 2
    threshold = (
        f"  living-codex:thresholds:\n    memoryUsagePercent: {{warning: {warning:g}, critical: {critical:g}}}\n"
    )
    path.write_text(original + threshold)
    git(world.repo, "commit", "--quiet", "-am", f"staging: memory warning at {warning:g}%")
    drift = world.run("codexops", "diff", "staging")
    assert drift.returncode == 1 and "its settings differ from Pulumi.staging.yaml" in drift.stdout
    assert "alert-rules.yml: not what the spec renders now" in drift.stdout
    assert f"app-1: MEMORY_WARNING_PERCENT={running.warning} running, {warning} in the spec" in drift.stdout
    # a second commit before any sync ran (a missed run): the next sync applies both, desired vs running
    path.write_text(path.read_text().replace("  living-codex:replicas: 2\n", "  living-codex:replicas: 3\n"))
    git(world.repo, "commit", "--quiet", "-am", "staging: 3 replicas")
    synced = world.run("codexops", "sync", "staging")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "app-1: settings changed" in synced.stdout and "app-3 (:" in synced.stdout
    local = localenv.local_stack("staging")
    assert local.apps == ("app-1", "app-2", "app-3")
    assert all(localenv.process_states(local)[app] == "RUNNING" for app in local.apps)
    assert LocalBackend().drift("staging") == "" and world.run("codexops", "diff", "staging").returncode == 0
    assert f"> {warning:g}" in (local.runtime / "prometheus" / "alert-rules.yml").read_text()
    assert world.health("staging").json()["version"] == world.good.id

    git(world.repo, "revert", "--no-edit", "HEAD", "HEAD~1")  # both settings back: app-3 leaves
    back = world.run("codexops", "sync", "staging")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "app-3: beyond the spec's 2 replicas, stopped and removed" in back.stdout
    assert "app-3" not in localenv.process_states(localenv.local_stack("staging"))
    assert world.run("codexops", "diff", "staging").returncode == 0
