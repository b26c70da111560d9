"""A promotion SIGKILLed on two real local stacks (tests/support/two_stacks.py) before its commit,
mid-rollout and during its verification leaves a stack that diff calls what it is and that sync (or
promote again) repairs, with the stack file, the history and PostgreSQL's data intact.

Each test asks a fixture for the state it starts from (production on good, staging on a gated "next"):
the fixture brings the stacks there when an earlier test moved them, so any order works.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest

from codexops import localenv
from tests.support.gitrepo import git
from tests.support.releases import build
from tests.support.two_stacks import BIN, ROOT, STACKS, Builder, World, good_on_both, two_stacks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    builders: dict[str, Builder] = {"good": build, "next": lambda repo: build(repo, RELEASE_TEST_TAG="next")}
    with two_stacks(tmp_path_factory.mktemp("killed"), builders) as world:
        good_on_both(world)
        localenv.sql(
            localenv.local_stack("production"),
            "CREATE TABLE kill_probe (id int); INSERT INTO kill_probe VALUES (42)",
            "livingcodex",
        )
        yield world


@pytest.fixture
def good_everywhere(world: World) -> None:
    for stack in STACKS:
        world.on_release(stack, world.good)


@pytest.fixture
def production_on_good(world: World) -> None:
    world.on_release("production", world.good)


@pytest.fixture
def next_gated_on_staging(world: World) -> subprocess.CompletedProcess[str] | None:
    """Staging serves "next" and its last gate passed (the evidence promote needs); the gate when one ran here."""
    after = world.releases["next"]
    events = world.history("staging")
    last = events[-1] if events else {}
    if world.named("staging") == after.id and (last.get("kind"), last.get("release"), last.get("verdict")) == (
        "gate",
        after.id,
        "PASS",
    ):
        return None
    world.on_release("staging", after)
    return world.run("codexops", "gate", "--target", "staging")


def promote_killed_at(world: World, marker: str) -> str:
    """`codexops promote --from staging --to production`, SIGKILLed the moment a line with `marker` appears."""
    process = subprocess.Popen(
        [str(BIN / "codexops"), "promote", "--from", "staging", "--to", "production", "--accept-warnings"],
        cwd=ROOT,
        env={**world.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    output = "".join(seen)
    print(f"$ codexops promote (killed at {marker!r}) -> {process.returncode}\n{output}")
    assert process.returncode == -signal.SIGKILL, f"promote ended before {marker!r}:\n{output}"
    return output


def intact(world: World, commits: int) -> None:
    """Nothing lost: the stack files committed (no half-written file), the history readable, the data there."""
    assert git(world.repo, "status", "--porcelain", "--untracked-files=no").strip() == ""
    assert world.commits() == commits
    assert all(row["kind"] for row in world.timeline("production"))
    probe = localenv.sql(localenv.local_stack("production"), "SELECT id FROM kill_probe", "livingcodex")
    assert probe == "42"


def test_the_release_to_promote_is_deployed_and_gated_on_staging(
    world: World, good_everywhere: None, next_gated_on_staging: subprocess.CompletedProcess[str] | None
) -> None:
    gated = next_gated_on_staging  # from good on staging: the deploy and the gate run here
    assert gated is not None and gated.returncode == 0, gated
    assert "attestation signed" in gated.stdout, gated.stdout + gated.stderr


@pytest.mark.usefixtures("production_on_good", "next_gated_on_staging")
def test_a_promotion_killed_before_its_commit_leaves_production_as_it_was(world: World) -> None:
    commits = world.commits()
    promote_killed_at(world, "==> evidence:")
    intact(world, commits)
    assert world.named("production") == world.good.id
    same = world.run("codexops", "diff", "production")
    assert same.returncode == 0 and f"serves {world.good.id}" in same.stdout


@pytest.mark.usefixtures("production_on_good", "next_gated_on_staging")
def test_a_promotion_killed_mid_rollout_is_drift_and_sync_repairs_it(world: World) -> None:
    after = world.releases["next"]
    commits = world.commits()
    promote_killed_at(world, f"app-1 serves {after.id}")
    intact(world, commits + 1)  # the promotion's commit, whole
    assert world.named("production") == after.id
    drift = world.run("codexops", "diff", "production")
    assert drift.returncode == 1, drift.stdout
    assert "app-2 serves" in drift.stdout and f"app-2 serves {after.id}" not in drift.stdout
    synced = world.run("codexops", "sync", "production")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert f"app-1 (:{localenv.local_stack('production').ports.apps[0]}) serves {after.id} already" in synced.stdout
    assert world.run("codexops", "diff", "production").returncode == 0
    assert world.health("production").json()["version"] == after.id
    intact(world, commits + 1)


@pytest.mark.usefixtures("production_on_good", "next_gated_on_staging")
def test_a_promotion_killed_during_its_verification_is_drift_and_promote_verifies_it(world: World) -> None:
    commits = world.commits()
    promote_killed_at(world, "==> checklist and smoke load")
    intact(world, commits + 1)
    after = world.releases["next"]
    drift = world.run("codexops", "diff", "production")
    assert drift.returncode == 1 and f"no verification of {after.id} passed" in drift.stdout, drift.stdout
    again = world.run("codexops", "promote", "--from", "staging", "--to", "production", "--accept-warnings")
    assert again.returncode == 0 and "NO CHANGE" not in again.stdout, again.stdout + again.stderr
    assert world.run("codexops", "diff", "production").returncode == 0
    idle = world.run("codexops", "sync", "production")
    assert idle.returncode == 0 and "IN SYNC" in idle.stdout
    intact(world, commits + 1)
