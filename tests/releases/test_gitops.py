"""The desired state in Git on two real local stacks (tests/support/gitops_world.py): a fresh clone with an
empty release store syncs a stack by building the named release from its commit; a hand-edited production
file naming a release without evidence is refused by `sync` and `deploy`, and synced once its evidence is
committed; `git revert` + `sync` rolls back. (Schema and settings changes: test_gitops_changes.py.)

Both stacks start on the good release, committed as their desired state; each test starts from there
(`good_everywhere`), whatever ran before it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from codexops.releases import desired
from codexops.releases.local_backend import LocalBackend
from tests.support import gitops_world
from tests.support.evidence import commit_evidence
from tests.support.gitrepo import git
from tests.support.releases import build
from tests.support.two_stacks import Builder, World

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    builders: dict[str, Builder] = {
        "good": build,  # from the clone's HEAD: a fresh clone can build it again from that commit
        "other": lambda repo: build(repo, RELEASE_TEST_TAG="other"),  # like good, another digest
    }
    with gitops_world.committed_world(tmp_path_factory.mktemp("gitops"), builders) as world:
        yield world


@pytest.fixture(autouse=True)
def good_everywhere(world: World) -> None:
    gitops_world.good_everywhere(world)


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
