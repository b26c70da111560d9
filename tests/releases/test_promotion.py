"""Releases between two real local stacks (staging :5002, production on its own ports), end to end:
promotion on evidence under load, a refused promotion, a bad release rolled back automatically, a
schema-moving release rolled back with its backup restored, and a second promotion refused. Then the
desired state in Git (a temporary clone, CODEX_REPO_DIR): promotion commits the production file, `diff`
is 0, a hand-edited file makes `diff` 1 and `sync` 0 again, `git revert` + `sync` rolls back, promoting
what already serves is a no-op, and a fresh clone with an empty release store syncs a stack by building
the named release from its commit.

The tests run in order against the same two stacks (each builds on the state the previous one left). The
bad release goes last: its alerts (5-minute rate windows) would fail the verification of what follows.
Fixed ports: run under the shared lock, e.g.
  flock /work/localenv.lock .venv/bin/pytest tests/releases -x -q
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from codexops import localenv, signing
from codexops.releases import desired
from codexops.releases.local_backend import LocalBackend
from codexops.releases.model import Release
from tests.support.gitrepo import clone_checkout, git
from tests.support.releases import build, copy_with_migration
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STACKS = ("staging", "production")


@dataclass
class World:
    tmp: Path
    env: dict[str, str]
    repo: Path  # the temporary clone whose stack files are the desired state
    good: Release  # built from the clone's HEAD: a fresh clone can build it again from that commit
    other: Release  # like good, another digest
    slow: Release  # injected latency above the critical threshold
    bad: Release  # half its requests fail
    migrating: Release  # one migration ahead

    def run(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A codexops command or a runbook script, as an operator would run it."""
        program = str(BIN / "codexops") if command[0] == "codexops" else str(ROOT / command[0])
        result = subprocess.run(
            [program, *command[1:]], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        print(f"$ {' '.join(command)} -> {result.returncode}\n{result.stdout}{result.stderr}")
        return result

    def history(self, stack: str) -> list[dict[str, str]]:
        """The events recorded here (gates, deploys, ...), without the stack file's commits."""
        return [e for e in self.timeline(stack) if e["kind"] != "commit"]

    def timeline(self, stack: str) -> list[dict[str, str]]:
        listed = self.run("codexops", "history", stack, "--json")
        return [json.loads(line) for line in listed.stdout.splitlines()]

    def named(self, stack: str) -> str | None:
        return desired.read(stack, self.repo).release

    def commits(self) -> int:
        return int(git(self.repo, "rev-list", "--count", "HEAD"))

    def health(self, stack: str) -> httpx.Response:
        return httpx.get(f"{localenv.local_stack(stack).gateway_url()}/health", timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("releases")
    repo = clone_checkout(tmp / "repo")
    env = {
        **os.environ,
        "CODEX_REPO_DIR": str(repo),
        "CODEX_STACKS_DIR": str(tmp / "stacks"),
        "CODEX_RELEASES_DIR": str(tmp / "store"),
        "CODEX_BACKEND": "local",
        "GITHUB_ACTOR": "release-test",
        # The operator's key signs full gates; the repository trusts it (evidence is a signed full gate).
        "CODEX_SIGNING_KEY": str(tmp / "key" / "signing-key"),
        "CODEX_TRUSTED_KEYS": str(tmp / "trusted-keys.txt"),
    }
    key = signing.create_key(Path(env["CODEX_SIGNING_KEY"]))
    (tmp / "trusted-keys.txt").write_text(signing.public_line(key, "release-test") + "\n")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CODEX_REPO_DIR", "CODEX_STACKS_DIR", "CODEX_RELEASES_DIR", "CODEX_BACKEND", "GITHUB_ACTOR"):
            patch.setenv(name, env[name])
        for stack in STACKS:
            if localenv.port_taken(localenv.local_stack(stack).ports.gateway):
                pytest.fail(f"the {stack} gateway port is taken: stop what listens there (runbooks/stop-servers.sh)")
        with ThreadPoolExecutor(5) as pool:  # independent: the releases are built side by side
            builds = {
                "good": pool.submit(build, repo),
                "other": pool.submit(build, repo, RELEASE_TEST_TAG="other"),
                "slow": pool.submit(build, CHAOS_LATENCY_MS="1500"),
                "bad": pool.submit(build, CHAOS_ERROR_RATE="0.5", CHAOS_ALLOW_IN_PRODUCTION="true"),
                "migrating": pool.submit(build, copy_with_migration(tmp / "tree", revision="9001")),
            }
            world = World(tmp, env, repo, **{name: future.result() for name, future in builds.items()})
        try:
            with ThreadPoolExecutor(len(STACKS)) as pool:
                starts = [pool.submit(world.run, "runbooks/start-server.sh", f"--stack={stack}") for stack in STACKS]
                assert [started.result().returncode for started in starts] == [0] * len(STACKS)
            yield world
        finally:
            stopped = world.run("runbooks/stop-servers.sh")
            shutil.rmtree(tmp / "store", ignore_errors=True)
        assert stopped.returncode == 0
        for stack in STACKS:
            assert not localenv.port_taken(localenv.local_stack(stack).ports.gateway), f"{stack} still listens"


def admin_token(stack: str) -> str:
    local = localenv.local_stack(stack)
    password = localenv.local_secrets(local)["ADMIN_PASSWORD"]
    login = httpx.post(
        f"{local.gateway_url()}/api/auth/login", json={"username": "admin", "password": password}, timeout=10
    )
    assert login.status_code == 200, login.text
    return str(login.json()["accessToken"])


def wait_for_lock_holder(world: World, stack: str, timeout: float = 60) -> str:
    path = world.tmp / "stacks" / stack / "change.lock"
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"nobody took {path} within {timeout} s")


def test_a_good_release_is_promoted_under_load_and_a_second_promotion_is_refused(world: World) -> None:
    deployed = world.run("codexops", "deploy", "staging", "--release", world.good.id, "--reports", str(world.tmp))
    assert deployed.returncode == 0, deployed.stderr
    assert world.health("staging").json()["version"] == world.good.id
    # The deploy's smoke is no evidence; the full gate (the spec's load) of that release is, signed.
    gated = world.run("codexops", "gate", "--target", "staging", "--reports", str(world.tmp))
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert "attestation signed" in gated.stdout
    production = localenv.local_stack("production").gateway_url()
    reads = Traffic(
        production,
        ("/api/nodes?limit=5", "/health/live"),
        headers={"Authorization": f"Bearer {admin_token('production')}"},
        is_failure=lambda status: not 200 <= status < 400,
    )
    with reads as load:
        first = subprocess.Popen(
            # A WARN (the shared machine missing the target rate) is enough here: promotion under load is the point.
            [str(ROOT / "runbooks" / "deploy-production.sh"), "--accept-warnings"],
            cwd=ROOT,
            env=world.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        holder = wait_for_lock_holder(world, "production")
        second = world.run("codexops", "promote", "--from", "staging", "--to", "production")
        output, _ = first.communicate(timeout=600)
        print(output)
    assert "promote from staging" in holder
    assert second.returncode == 1
    assert "refused: stack production is busy: promote from staging by release-test" in second.stderr
    assert first.returncode == 0, output
    assert f"PASS: production serves {world.good.id}" in output or "WARN: production serves" in output
    health = world.health("production")
    assert health.status_code == 200 and health.json()["version"] == world.good.id
    print(f"requests at production's gateway during the promotion: {load.requests}")
    assert load.requests > 100
    assert load.failures == []
    promoted = [e for e in world.history("production") if e["kind"] == "promote"]
    last = promoted[-1]
    assert (last["release"], last["source"], last["actor"]) == (world.good.id, "staging", "release-test")
    assert last["verdict"] in ("PASS", "WARN") and last["report"].endswith("report.json")
    # GitOps: the promotion is a commit of production's file (release, evidence digest, who) ...
    assert world.named("production") == world.good.id
    commit = [e for e in world.timeline("production") if e["kind"] == "commit"][-1]
    assert commit["detail"] == f"promote {world.good.id} to production (from staging)"
    assert commit["evidence"].startswith("sha256:") and commit["actor"] == "release-test"
    # ... whose evidence digest is the signed attestation's, and production serves what its file names.
    signed = sorted(world.tmp.glob("staging-*/attestation.json"))[-1]
    assert commit["evidence"] == "sha256:" + hashlib.sha256(signed.read_bytes()).hexdigest()
    diff = world.run("codexops", "diff", "production")
    assert diff.returncode == 0 and f"production serves {world.good.id}, as Pulumi.production.yaml" in diff.stdout


def test_promoting_the_release_already_serving_is_a_no_op(world: World) -> None:
    commits, events = world.commits(), len(world.history("production"))
    pids = localenv.supervisorctl(
        "pid", *localenv.local_stack("production").apps, stack=localenv.local_stack("production")
    )
    again = world.run("codexops", "promote", "--from", "staging", "--to", "production", "--accept-warnings")
    assert again.returncode == 0, again.stderr
    assert f"NO CHANGE: production already serves {world.good.id}" in again.stdout
    assert world.commits() == commits and len(world.history("production")) == events  # no commit, no deploy
    after = localenv.supervisorctl(
        "pid", *localenv.local_stack("production").apps, stack=localenv.local_stack("production")
    )
    assert after == pids  # no replica restarted


def test_a_fresh_clone_syncs_a_stack_building_the_named_release_from_its_commit(world: World) -> None:
    # staging serves another release, deployed outside Git; its file still names good
    assert LocalBackend().deploy("staging", world.other, print).ok
    assert world.named("staging") == world.good.id
    fresh = world.tmp / "fresh"
    subprocess.run(["git", "clone", "--quiet", str(world.repo), str(fresh)], check=True)
    env = {**world.env, "CODEX_REPO_DIR": str(fresh), "CODEX_RELEASES_DIR": str(world.tmp / "empty-store")}
    clone = World(world.tmp, env, fresh, world.good, world.other, world.slow, world.bad, world.migrating)
    assert clone.run("codexops", "diff", "staging").returncode == 1
    synced = clone.run("codexops", "sync", "staging")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert f"building it from commit {world.good.commit}" in synced.stdout
    assert (world.tmp / "empty-store" / f"{world.good.version}-{world.good.short_digest}").is_dir()
    assert world.health("staging").json()["version"] == world.good.id
    assert clone.run("codexops", "diff", "staging").returncode == 0


def test_a_release_with_injected_latency_is_refused_promotion(world: World) -> None:
    assert LocalBackend().deploy("staging", world.slow, print).ok  # on staging, not yet judged
    gated = world.run("runbooks/validate-deployment.sh", "staging")
    assert gated.returncode == 1 and "verdict: FAIL" in gated.stdout
    refused = world.run("runbooks/deploy-production.sh")
    assert refused.returncode == 1
    assert f"refused: the latest gate of {world.slow.id} on staging was a smoke" in refused.stderr
    assert world.health("production").json()["version"] == world.good.id
    last = world.history("production")[-1]
    assert (last["kind"], last["release"], last["verdict"]) == ("promote", world.slow.id, "REFUSED")


def test_a_schema_moving_release_is_backed_up_and_rollback_restores_it(world: World) -> None:
    production = localenv.local_stack("production")

    def sql(statement: str) -> str:
        return localenv.sql(production, statement, "livingcodex")

    deployed = world.run("codexops", "deploy", "production", "--release", world.migrating.id)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
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
    # the rollback is a commit back to production's previous desired state (from its git log)
    assert world.named("production") == world.good.id
    assert world.run("codexops", "diff", "production").returncode == 0


def test_a_hand_edited_file_is_drift_until_synced_and_git_revert_plus_sync_rolls_back(world: World) -> None:
    desired.write("production", desired.Desired(world.other.id, None), world.repo)  # as in an editor
    uncommitted = world.run("codexops", "sync", "production")
    assert uncommitted.returncode == 2 and "uncommitted changes: commit them" in uncommitted.stderr
    git(world.repo, "commit", "--quiet", "-am", f"production runs {world.other.id}")
    drift = world.run("codexops", "diff", "production")
    assert drift.returncode == 1
    assert f"Pulumi.production.yaml names {world.other.id}; production serves {world.good.id}" in drift.stdout
    synced = world.run("codexops", "sync", "production")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert world.health("production").json()["version"] == world.other.id
    assert world.run("codexops", "diff", "production").returncode == 0
    idle = world.run("codexops", "sync", "production")  # idempotent
    assert idle.returncode == 0 and "IN SYNC" in idle.stdout and "nothing to do" in idle.stdout

    git(world.repo, "revert", "--no-edit", "HEAD")  # the manual rollback: revert the commit, sync
    assert world.run("codexops", "diff", "production").returncode == 1
    back = world.run("codexops", "sync", "production")
    assert back.returncode == 0, back.stdout + back.stderr
    assert world.health("production").json()["version"] == world.good.id
    assert world.run("codexops", "diff", "production").returncode == 0
    rows = world.timeline("production")
    assert rows[-1]["kind"] == "sync" and rows[-1]["release"] == world.good.id
    assert any(r["kind"] == "commit" and r["detail"].startswith('Revert "production runs') for r in rows)


def test_a_bad_release_forced_onto_production_is_rolled_back(world: World) -> None:
    forced = world.run("codexops", "deploy", "production", "--release", world.bad.id, "--reports", str(world.tmp))
    assert forced.returncode == 1
    assert f"rolled back to {world.good.id}" in forced.stdout
    health = world.health("production")
    assert health.status_code == 200 and health.json()["version"] == world.good.id
    assert health.json()["status"] == "healthy"
    events = [(e["kind"], e["release"], e["verdict"]) for e in world.history("production") if e["kind"] != "gate"]
    assert events[-2:] == [("deploy", world.bad.id, "FAIL"), ("rollback", world.good.id, "PASS")]
    assert world.history("production")[-2]["kind"] == "gate"  # the rollback passed its own checklist
    # the deploy was committed, and its revert: production's file names good again
    commits = [e for e in world.timeline("production") if e["kind"] == "commit"]
    assert [c["release"] for c in commits[-2:]] == [world.bad.id, world.good.id]
    assert world.named("production") == world.good.id
    printed = world.run("codexops", "history", "production").stdout
    assert world.bad.id in printed and "rollback" in printed and "release-test" in printed
