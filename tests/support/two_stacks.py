"""Two real local stacks (staging and production, each on its own ports) for the release tests, with
their desired state in a temporary clone of this checkout (CODEX_REPO_DIR) and their own release store,
stacks folder, reports folder and signing key: nothing is written into the checkout.

Ports: the stacks' (localenv.stack_ports), so two modules side by side need a CODEX_PORT_BASE each, as
scripts/run_tests.py gives every shard; by hand:
  CODEX_PORT_BASE=21000 .venv/bin/pytest tests/releases/test_promotion.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from codexops import http_client, localenv, signing
from codexops.releases import desired
from codexops.releases.model import Release
from tests.support.evidence import commit_evidence
from tests.support.gitrepo import clone_checkout, git
from tests.support.suite_load import suite_load_yaml

ROOT = Path(__file__).resolve().parents[2]  # the checkout: its codexops and runbooks run
BIN = Path(sys.executable).parent
STACKS = ("staging", "production")
Builder = Callable[[Path], Release]  # builds a release, given the temporary clone
WORLD_ENV = (
    *("CODEX_REPO_DIR", "CODEX_STACKS_DIR", "CODEX_RELEASES_DIR", "CODEX_REPORTS_DIR", "GITHUB_ACTOR"),
    *("CODEX_SIGNING_KEY", "CODEX_TRUSTED_KEYS"),  # the test's own calls sign and verify as the commands do
)


@dataclass
class World:
    tmp: Path
    env: dict[str, str]
    repo: Path  # the temporary clone whose stack files are the specs and the desired state
    releases: dict[str, Release]  # built for the module, by name ("good" is built from the clone's HEAD)

    @property
    def good(self) -> Release:
        return self.releases["good"]

    def run(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A codexops command or a runbook script, as an operator would run it."""
        program = str(BIN / "codexops") if command[0] == "codexops" else str(ROOT / command[0])
        began = time.monotonic()
        result = subprocess.run(
            [program, *command[1:]], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        took = time.monotonic() - began
        print(f"$ {' '.join(command)} -> {result.returncode} in {took:.1f} s\n{result.stdout}{result.stderr}")
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

    def on_release(self, stack: str, release: Release) -> None:
        """`stack` named and serving `release`, deployed (and committed) when it is not: a test's starting
        state, whatever an earlier test left. Production admits only a release with committed evidence."""
        if self.named(stack) == release.id and self.run("codexops", "diff", stack).returncode == 0:
            return
        deployed = self.run("codexops", "deploy", stack, "--release", release.id)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    def health(self, stack: str) -> httpx.Response:
        return http_client.get(f"{localenv.local_stack(stack).gateway_url()}/health", timeout=10)


NO_CANARY = "{steps: []}"  # the release tests' default: a deploy moves the replicas at once
SUITE_SHUTDOWN = "{drainSeconds: 2, graceSeconds: 25}"


def set_config(stack_file: Path, key: str, flow: str) -> None:
    """Replace the stack file's `living-codex:<key>` block (if any) with one flow-YAML line, comments kept."""
    kept, skipping = [], False
    for line in stack_file.read_text().splitlines():
        if line.startswith(f"  living-codex:{key}:"):
            skipping = True
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        kept.append(line)
    stack_file.write_text("\n".join([*kept, f"  living-codex:{key}: {flow}"]) + "\n")


@contextmanager
def two_stacks(tmp: Path, builders: dict[str, Builder], rollouts: dict[str, str] | None = None) -> Iterator[World]:
    """Build the releases side by side, start both stacks, yield; stop them and check the ports are free.

    `rollouts`: each stack's `living-codex:rollout` in the clone (default: no canary steps on either, so a
    test of promotion or sync is not also a test of the canary: tests/releases/test_canary.py is). Both
    stacks' full gates run at the suite's load (tests/support/suite_load.py), and production runs 2
    replicas draining for SUITE_SHUTDOWN's 2 s, as staging does."""
    repo = clone_checkout(tmp / "repo")
    for stack in STACKS:
        set_config(repo / f"Pulumi.{stack}.yaml", "rollout", (rollouts or {}).get(stack, NO_CANARY))
        set_config(repo / f"Pulumi.{stack}.yaml", "load", suite_load_yaml())
    # Production as large as staging (2 replicas, not 3) and draining as long (2 s, not 5): a rolling
    # deploy still replaces one replica at a time, with one start and one drain fewer. (The reader that
    # once failed a canary test at 19dab06 had met an nginx reload's closed keep-alive connection, which
    # any replica count meets: tests/support/traffic.py sends such a GET again, as clients do.)
    set_config(repo / "Pulumi.production.yaml", "replicas", "2")
    set_config(repo / "Pulumi.production.yaml", "shutdown", SUITE_SHUTDOWN)
    git(repo, "commit", "--quiet", "-am", "Rollout steps, the suite's load and drain for this test")
    env = {
        **os.environ,
        "CODEX_REPO_DIR": str(repo),
        "CODEX_STACKS_DIR": str(tmp / "stacks"),
        "CODEX_RELEASES_DIR": str(tmp / "store"),
        "CODEX_REPORTS_DIR": str(tmp / "reports"),
        "CODEX_BACKEND": "local",
        "GITHUB_ACTOR": "release-test",
        # The operator's key signs full gates; the repository trusts it (evidence is a signed full gate).
        "CODEX_SIGNING_KEY": str(tmp / "key" / "signing-key"),
        "CODEX_TRUSTED_KEYS": str(tmp / "trusted-keys.txt"),
    }
    key = signing.create_key(Path(env["CODEX_SIGNING_KEY"]))
    (tmp / "trusted-keys.txt").write_text(signing.public_line(key, "release-test") + "\n")
    with pytest.MonkeyPatch.context() as patch:
        for name in (*WORLD_ENV, "CODEX_BACKEND"):
            patch.setenv(name, env[name])
        for stack in STACKS:
            if localenv.port_taken(localenv.local_stack(stack).ports.gateway):
                pytest.fail(f"the {stack} gateway port is taken: stop what listens there (runbooks/stop-servers.sh)")
        with ThreadPoolExecutor(len(builders)) as pool:  # independent: the releases are built side by side
            futures = {name: pool.submit(builder, repo) for name, builder in builders.items()}
            world = World(tmp, env, repo, {name: future.result() for name, future in futures.items()})
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


def good_on_both(world: World) -> None:
    """Both stacks deployed with good, production admitting it (its evidence committed, as promote does)."""
    commit_evidence("production", world.good)
    with ThreadPoolExecutor(len(STACKS)) as pool:
        deploys = list(pool.map(lambda s: world.run("codexops", "deploy", s, "--release", world.good.id), STACKS))
    assert [d.returncode for d in deploys] == [0, 0], [d.stdout + d.stderr for d in deploys]
