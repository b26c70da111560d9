"""Releases verified at every start, on two real local stacks (tests/support/two_stacks.py): a file
edited in a built release is refused by deploy, sync and the replica's own start, reported by diff, and
repaired by a rebuild plus sync. (A promotion killed halfway: test_killed_promotions.py.)

Ports: localenv.stack_ports (scripts/run_tests.py gives the module its own CODEX_PORT_BASE).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexops import localenv
from codexops.releases.model import Release
from tests.support.gitrepo import git
from tests.support.releases import build
from tests.support.two_stacks import STACKS, World, good_on_both, two_stacks
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with two_stacks(tmp_path_factory.mktemp("integrity"), {"good": build}) as world:
        good_on_both(world)
        yield world


def site_file(release: Release, name: str) -> Path:
    assert release.path is not None
    return next((release.path / "venv" / "lib").glob(f"python*/site-packages/{name}"))


def replica_log(stack: str, app: str) -> str:
    return (localenv.local_stack(stack).runtime / "logs" / f"{app}.out.log").read_text(errors="replace")


@pytest.fixture
def good_everywhere(world: World) -> None:
    for stack in STACKS:
        world.on_release(stack, world.good)


def test_a_file_edited_in_a_built_release_is_refused_reported_and_repaired_by_a_rebuild(
    world: World, good_everywhere: None
) -> None:
    assert world.run("codexops", "diff", "staging").returncode == 0
    edited = site_file(world.good, "app/health.py")
    with edited.open("a") as handle:  # root ignores the 0444: the edit an attacker with the account makes
        handle.write("\nprint('INJECTED')\n")
    named = "site-packages/app/health.py (changed)"
    drift = world.run("codexops", "diff", "staging")
    assert drift.returncode == 1 and named in drift.stdout and "content drifted" in drift.stdout
    commits = world.commits()
    for command in (("deploy", "staging", "--release", world.good.id), ("sync", "staging")):
        refused = world.run("codexops", *command)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert named in refused.stderr and "codexops release build" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert world.commits() == commits  # refused before any commit
    # supervisord restarting a replica goes through the launcher, which hashes the folder first
    localenv.supervisor("staging").restart("app-1")
    staging = localenv.local_stack("staging")
    ended = ("FATAL", "EXITED")  # FATAL when refused within startsecs, else EXITED (exit 78 is not restarted)
    wait_until(lambda: localenv.process_states(staging).get("app-1") in ended, 60, "app-1 refused to start")
    log = replica_log("staging", "app-1")
    assert "refused to start" in log and "app/health.py (changed)" in log and "INJECTED" not in log
    stopped = world.run("codexops", "diff", "staging")
    assert stopped.returncode == 1 and "app-1 serves no release (" in stopped.stdout

    tree = world.tmp / "rebuild"  # `codexops release build` at the release's commit, as the refusal says
    git(world.repo, "worktree", "add", "--detach", "--quiet", str(tree), world.good.commit)
    rebuilt = build(tree)  # the edited folder is moved aside
    assert rebuilt.id == world.good.id and rebuilt.manifest_digest != world.good.manifest_digest
    assert list((rebuilt.path.parent / ".tampered").iterdir())  # type: ignore[union-attr]
    synced = world.run("codexops", "sync", "staging")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "started from another build" in synced.stdout  # app-2 still ran the edited build's code
    assert world.run("codexops", "diff", "staging").returncode == 0
    # The store is shared: production's replicas ran the edited folder too, and are drift until synced.
    production = world.run("codexops", "diff", "production")
    assert production.returncode == 1 and "started from another build" in production.stdout
    assert world.run("codexops", "sync", "production").returncode == 0
    assert world.run("codexops", "diff", "production").returncode == 0
    status = json.loads(world.run("codexops", "status", "--stack", "staging", "--json").stdout)
    assert status["release"] == {"id": world.good.id, "digest": world.good.digest}
