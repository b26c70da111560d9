"""Canary steps on real local stacks: a release slow on its canary is aborted at the first step with only
that step's share of requests slow and none failed, and production keeps serving; a healthy release goes
through every step, then takes every replica. The steps and their figures are in the deploy's history.

Production's rollout here: two short steps (10%, then 50%) with a small sample floor, judged on the test's
own steady reads through the gateway (production's traffic is its users'). The releases are forced onto
production by break-glass: what is tested is the rollout, not the evidence (test_promotion.py is)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codexops import localenv, signing
from codexops.releases import attestation
from tests.support.releases import build
from tests.support.traffic import Traffic
from tests.support.two_stacks import BIN, NO_CANARY, ROOT, World, two_stacks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
PAUSE_SECONDS = 20
ROLLOUT = (
    f"{{steps: [{{weight: 10, pause: {PAUSE_SECONDS}s}}, {{weight: 50, pause: {PAUSE_SECONDS}s}}], "
    "analysis: {minSamples: 20, minLatencyDeltaMs: 100}}"  # the slow canary is 400 ms slower; noise is not
)
LATENCY_MS = 400  # far above the replicas' p95 here, below the critical 1000 ms: only the relative limit sees it
READS = ("/api/nodes?limit=5",)  # anonymous: a 401 is an answer; the chaos latency applies to /api/


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    builders = {
        "good": lambda repo: build(repo),
        "slow": lambda repo: build(repo, CHAOS_LATENCY_MS=str(LATENCY_MS), CHAOS_ALLOW_IN_PRODUCTION="true"),
        "next": lambda repo: build(repo, CODEX_CANARY_TEST="next"),  # healthy, another id
    }
    rollouts = {"production": ROLLOUT, "staging": NO_CANARY}
    with two_stacks(tmp_path_factory.mktemp("canary"), builders, rollouts) as world:
        forced = world.run(
            "codexops", "deploy", "production", "--release", world.good.id, "--break-glass", "canary test"
        )
        assert forced.returncode == 0, forced.stdout + forced.stderr  # nothing served: no canary, replicas at once
        yield world


def _deploy_under_reads(world: World, release: str) -> tuple[int, Traffic, str]:
    gateway = localenv.local_stack("production").gateway_url()
    with Traffic(gateway, READS, threads=4, interval=0.05, slow_seconds=LATENCY_MS / 2000) as reads:
        deployed = world.run("codexops", "deploy", "production", "--release", release, "--break-glass", "canary test")
    return deployed.returncode, reads, deployed.stdout + deployed.stderr


def _last_rollout(world: World, release: str) -> dict[str, Any]:
    path = Path(world.env["CODEX_STACKS_DIR"]) / "production" / "history.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    deploys = [e for e in events if e["kind"] == "deploy" and e["release"] == release and e.get("rollout")]
    assert deploys, f"no deploy of {release} recorded its rollout"
    return dict(deploys[-1]["rollout"])


def _attested_steps(world: World, rollout: dict[str, Any], name: str) -> dict[str, Any]:
    """The rollout's signed predicate (verified with the world's trusted key), checked against its history."""
    folder = Path(rollout["attestation"])
    envelope = json.loads((folder / attestation.ENVELOPE).read_text())
    payload, _ = signing.verify_envelope(envelope, signing.read_trusted(Path(world.env["CODEX_TRUSTED_KEYS"])))
    statement = json.loads(payload)
    release = world.releases[name]
    assert statement["subject"][0]["digest"]["sha256"] == release.digest.removeprefix("sha256:")
    body: dict[str, Any] = statement["predicate"]
    assert (body["release"], body["outcome"], body["steps"]) == (release.id, rollout["outcome"], rollout["steps"])
    return body


def test_a_release_slow_on_its_canary_is_aborted_at_the_first_step(world: World) -> None:
    code, reads, said = _deploy_under_reads(world, world.releases["slow"].id)
    assert code != 0, said
    assert "canary aborted" in said and "step 1 (10%) FAIL" in said, said
    assert world.health("production").json()["version"] == world.good.id
    assert localenv.canary_of(localenv.read_state(localenv.local_stack("production"))) is None  # removed
    rollout = _last_rollout(world, world.releases["slow"].id)
    steps = rollout["steps"]
    assert rollout["outcome"] == "ABORTED" and [s["step"] for s in steps] == [1]
    signed = _attested_steps(world, rollout, "slow")
    assert (signed["abortedAtStep"], signed["baseline"]) == (1, world.good.id)
    assert "step 1 10% FAIL" in world.run("codexops", "history", "production").stdout
    assert reads.failures == [], reads.failures[:5]
    # Slow answers only from the canary while it had its 10%: far below half of what the step saw.
    share = reads.slow / reads.requests
    print(f"{reads.requests} reads, {reads.slow} slow ({share:.1%}), {len(reads.failures)} failed")
    assert reads.slow > 0 and share < 0.10, (reads.slow, reads.requests)


def test_a_healthy_release_goes_through_every_step_then_takes_every_replica(world: World) -> None:
    code, reads, said = _deploy_under_reads(world, world.releases["next"].id)
    assert code == 0, said
    assert reads.failures == [], reads.failures[:5]
    rollout = _last_rollout(world, world.releases["next"].id)
    steps = rollout["steps"]
    assert rollout["outcome"] == "PASSED"
    assert [(s["weight"], s["decision"]) for s in steps] == [(10, "PASS"), (50, "PASS")]
    assert all(s["canary"]["requests"] >= 20 and s["baseline"]["requests"] >= 20 for s in steps)
    assert _attested_steps(world, rollout, "next")["abortedAtStep"] is None
    served = world.run("codexops", "status", "--stack", "production", "--json")
    assert json.loads(served.stdout)["release"]["id"] == world.releases["next"].id, served.stdout


def test_an_operators_ctrl_c_aborts_the_rollout_and_every_request_goes_back(world: World) -> None:
    """The runbook's abort on the local backend: Ctrl-C during a step. Nothing but the canary changed."""
    serving = world.health("production").json()["version"]
    name = "good" if serving != world.good.id else "next"
    command = [str(BIN / "codexops"), "deploy", "production", "--release", world.releases[name].id]
    command += ["--break-glass", "canary test"]
    gateway = localenv.local_stack("production").gateway_url()
    # The deploy must hear SIGINT as a terminal's foreground process does, even when this pytest began with
    # it ignored (a background job of a shell): a Python handler here is the default again at exec.
    heard = signal.signal(signal.SIGINT, signal.default_int_handler)
    with Traffic(gateway, READS, threads=4, interval=0.05) as reads:
        deploy = subprocess.Popen(
            command, cwd=ROOT, env={**world.env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert deploy.stdout is not None
        said = ""
        for line in deploy.stdout:
            said += line
            if "step 1/2" in line:  # the canary takes its 10%: the operator presses Ctrl-C
                deploy.send_signal(signal.SIGINT)
                break
        said += deploy.communicate(timeout=600)[0]
    signal.signal(signal.SIGINT, heard)
    print(said)
    assert deploy.returncode != 0 and "step 1 (10%) aborted by the operator" in said, said
    assert world.health("production").json()["version"] == serving and world.named("production") == serving
    assert localenv.canary_of(localenv.read_state(localenv.local_stack("production"))) is None
    assert reads.failures == [], reads.failures[:5]
    rollout = _last_rollout(world, world.releases[name].id)
    assert (rollout["outcome"], rollout["steps"]) == ("ABORTED", [])
    assert _attested_steps(world, rollout, name)["reason"] == rollout["reason"]
