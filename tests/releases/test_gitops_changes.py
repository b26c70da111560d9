"""Changes the desired state carries beyond a release, on two real local stacks
(tests/support/gitops_world.py): a schema-moving release forced onto production by break-glass is backed
up and `rollback` (a commit back to the previous desired state) restores it; a committed settings change
(thresholds, replicas) is drift that `sync` applies, two commits at once after a missed run.

Both stacks start on the good release, committed as their desired state; each test starts from there
(`good_everywhere`), whatever ran before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codexops import localenv
from codexops.releases import desired
from codexops.releases.local_backend import LocalBackend
from infra.spec import load_spec
from tests.support import gitops_world
from tests.support.gitrepo import git
from tests.support.releases import build, copy_with_migration
from tests.support.two_stacks import Builder, World

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gitops-changes")
    builders: dict[str, Builder] = {
        "good": build,
        "migrating": lambda _: build(copy_with_migration(tmp / "tree", revision="9001")),  # one migration ahead
    }
    with gitops_world.committed_world(tmp, builders) as world:
        yield world


@pytest.fixture(autouse=True)
def good_everywhere(world: World) -> None:
    gitops_world.good_everywhere(world)


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
