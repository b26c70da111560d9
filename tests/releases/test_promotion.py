"""Promotion between two real local stacks (tests/releases/conftest.py), end to end: promotion on a
signed full gate under load (a commit of production's file), a second promotion refused while the first
holds the lock, promoting what already serves is a no-op, a release with injected latency refused, and
a bad release forced onto production rolled back automatically (its revert committed).

The tests share two stacks; each asks a fixture for its starting state (`first_promotion`: good promoted
to production, once; `staging_serves_good`), so any order works. No test after the bad release verifies
a deploy: its alerts (5-minute rate windows) fail only what they should.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from codexops import localenv
from codexops.releases.local_backend import LocalBackend
from tests.support.gitrepo import git
from tests.support.releases import build
from tests.support.traffic import Traffic
from tests.support.two_stacks import ROOT, Builder, World, two_stacks
from tests.support.verdicts import slow_release_refused_by_the_command
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    builders: dict[str, Builder] = {
        "good": build,  # from the clone's HEAD
        "slow": lambda _: build(CHAOS_LATENCY_MS="1500"),
        "bad": lambda _: build(CHAOS_ERROR_RATE="0.5", CHAOS_ALLOW_IN_PRODUCTION="true"),
    }
    with two_stacks(tmp_path_factory.mktemp("promotion"), builders) as world:
        yield world


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
    wait_until(lambda: path.exists() and bool(path.read_text()), timeout, f"somebody takes {path}")
    return path.read_text()


@dataclass(frozen=True)
class FirstPromotion:
    """What the first promotion showed: the gate, both promotions, the load, production's records after."""

    gated: subprocess.CompletedProcess[str]
    holder: str
    second: subprocess.CompletedProcess[str]
    code: int
    output: str
    requests: int
    failures: list[object]
    history: list[dict[str, str]]
    timeline: list[dict[str, str]]
    named: str | None
    diff: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def first_promotion(world: World) -> FirstPromotion:
    """Good deployed and full-gated on staging, promoted to production under load while a second promotion
    tries the lock; run once, for whichever test needs production on good first."""
    deployed = world.run("codexops", "deploy", "staging", "--release", world.good.id, "--reports", str(world.tmp))
    assert deployed.returncode == 0, deployed.stderr
    assert world.health("staging").json()["version"] == world.good.id
    # The deploy's smoke is no evidence; the full gate (the spec's load) of that release is, signed.
    gated = world.run("codexops", "gate", "--target", "staging", "--reports", str(world.tmp))
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
    print(f"requests at production's gateway during the promotion: {load.requests}")
    history, timeline = world.history("production"), world.timeline("production")
    return FirstPromotion(
        gated,
        holder,
        second,
        first.returncode,
        output,
        load.requests,
        list(load.failures),
        history,
        timeline,
        world.named("production"),
        world.run("codexops", "diff", "production"),
    )


@pytest.fixture
def staging_serves_good(world: World, first_promotion: FirstPromotion) -> None:
    """Staging back on good (a test may leave another release there), its full gate still the latest of good."""
    serving = LocalBackend().current_release("staging")
    if serving is None or serving.digest != world.good.digest:
        assert LocalBackend().deploy("staging", world.good, print).ok


def test_a_good_release_is_promoted_under_load_and_a_second_promotion_is_refused(
    world: World, first_promotion: FirstPromotion
) -> None:
    run = first_promotion
    assert run.gated.returncode == 0, run.gated.stdout + run.gated.stderr
    assert "attestation signed" in run.gated.stdout
    assert "promote from staging" in run.holder
    assert run.second.returncode == 1
    assert "refused: stack production is busy: promote from staging by release-test" in run.second.stderr
    assert run.code == 0, run.output
    assert f"PASS: production serves {world.good.id}" in run.output or "WARN: production serves" in run.output
    assert run.requests > 100
    assert run.failures == []
    promoted = [e for e in run.history if e["kind"] == "promote"]
    last = promoted[-1]
    assert (last["release"], last["source"], last["actor"]) == (world.good.id, "staging", "release-test")
    assert last["verdict"] in ("PASS", "WARN") and last["report"].endswith("report.json")
    assert Path(last["report"]).is_relative_to(world.tmp / "reports")  # CODEX_REPORTS_DIR: not the checkout's
    # GitOps: the promotion is a commit of production's file (release, evidence digest, who) ...
    assert run.named == world.good.id
    commit = [e for e in run.timeline if e["kind"] == "commit"][-1]
    assert commit["detail"] == f"promote {world.good.id} to production (from staging)"
    assert commit["evidence"].startswith("sha256:") and commit["actor"] == "release-test"
    # ... whose evidence digest is the signed attestation's, and production serves what its file names.
    signed = sorted(world.tmp.glob("staging-*/attestation.json"))[-1]
    assert commit["evidence"] == "sha256:" + hashlib.sha256(signed.read_bytes()).hexdigest()
    # ... committed with it under evidence/production/<release>/, so any clone can verify it (history does)
    committed = world.repo / "evidence" / "production" / world.good.id
    assert (committed / "attestation.json").read_bytes() == signed.read_bytes()
    assert commit["verdict"] == "VERIFIED" and "full gate on staging, signed by release-test" in commit["evidenceCheck"]
    files = git(world.repo, "show", "--name-only", "--format=", commit["commit"]).split()
    assert f"evidence/production/{world.good.id}/attestation.json" in files and "Pulumi.production.yaml" in files
    assert run.diff.returncode == 0, run.diff.stdout
    assert f"production serves {world.good.id}, as Pulumi.production.yaml" in run.diff.stdout


def test_the_full_gate_reports_the_candidate_against_productions_prometheus(
    world: World, first_promotion: FirstPromotion
) -> None:
    """Staging's full gate read production's own Prometheus over its load's window (codexops/gate_baseline.py):
    the candidate's side is the gated release, production's side whatever its replicas exported then."""
    stdout = first_promotion.gated.stdout
    folder = Path(stdout.split("==> report: ", 1)[1].split()[0]).parent
    (baseline,) = json.loads((folder / "report.json").read_text())["baselines"]
    print(f"baseline: {baseline['status']}: {baseline['note']} {baseline.get('difference')}")
    assert baseline["stack"] == "production" and baseline["status"] in ("compared", "not enough traffic")
    candidate, serving = baseline["candidate"], baseline["serving"]
    assert candidate["releases"] == [world.good.id] and candidate["requests"] >= baseline["min_samples"]
    assert serving["prometheus_url"] == localenv.local_stack("production").prometheus_url()
    assert "### Baseline" in (folder / "report.md").read_text()
    assert "==> baseline: staging against production" in stdout


@pytest.mark.usefixtures("staging_serves_good")
def test_promoting_the_release_already_serving_is_a_no_op(world: World) -> None:
    commits, events = world.commits(), len(world.history("production"))
    production = localenv.local_stack("production")
    pids = [localenv.supervisor(production).pid(app) for app in production.apps]
    again = world.run("codexops", "promote", "--from", "staging", "--to", "production", "--accept-warnings")
    assert again.returncode == 0, again.stderr
    assert f"NO CHANGE: production already serves {world.good.id}" in again.stdout
    assert world.commits() == commits and len(world.history("production")) == events  # no commit, no deploy
    after = [localenv.supervisor(production).pid(app) for app in production.apps]
    assert after == pids  # no replica restarted


@pytest.mark.usefixtures("first_promotion")
def test_a_release_with_injected_latency_is_refused_promotion(world: World) -> None:
    assert LocalBackend().deploy("staging", world.releases["slow"], print).ok  # on staging, not yet judged
    gated = world.run("runbooks/validate-deployment.sh", "staging")
    assert slow_release_refused_by_the_command(gated.returncode, gated.stdout), gated.stdout
    refused = world.run("runbooks/deploy-production.sh")
    assert refused.returncode == 1
    assert f"refused: the latest gate of {world.releases['slow'].id} on staging was a smoke" in refused.stderr
    assert world.health("production").json()["version"] == world.good.id
    last = world.history("production")[-1]
    assert (last["kind"], last["release"], last["verdict"]) == ("promote", world.releases["slow"].id, "REFUSED")


@pytest.mark.usefixtures("first_promotion")
def test_a_bad_release_forced_onto_production_is_rolled_back(world: World) -> None:
    forced = world.run(
        *("codexops", "deploy", "production", "--release", world.releases["bad"].id, "--reports", str(world.tmp)),
        *("--break-glass", "the release test forces a bad release onto production"),
    )
    assert forced.returncode == 1
    assert f"rolled back to {world.good.id}" in forced.stdout
    health = world.health("production")
    assert health.status_code == 200 and health.json()["version"] == world.good.id
    # Healthy again once the replicas' windows leave the bad release's errors behind (a clean-clone run saw
    # "degraded" at the first read on a loaded machine): a condition with a bound, not a single sample.
    wait_until(lambda: world.health("production").json()["status"] == "healthy", 90, "production healthy")
    events = [(e["kind"], e["release"], e["verdict"]) for e in world.history("production") if e["kind"] != "gate"]
    assert events[-2:] == [("deploy", world.releases["bad"].id, "FAIL"), ("rollback", world.good.id, "PASS")]
    assert world.history("production")[-2]["kind"] == "gate"  # the rollback passed its own checklist
    # the deploy was committed (as a break-glass, shown so), and its revert: production's file names good again
    commits = [e for e in world.timeline("production") if e["kind"] == "commit"]
    assert [c["release"] for c in commits[-2:]] == [world.releases["bad"].id, world.good.id]
    assert [c["verdict"] for c in commits[-2:]] == ["BREAK-GLASS", "VERIFIED"]
    assert world.named("production") == world.good.id
    printed = world.run("codexops", "history", "production").stdout
    assert world.releases["bad"].id in printed and "rollback" in printed and "release-test" in printed
