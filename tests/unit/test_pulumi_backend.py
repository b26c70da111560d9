"""The Pulumi backend without the Pulumi CLI: it says so, and never reports a deployment it did not make."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pulumi.automation import ConfigValue, OutputValue
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError

from codexops.backend_choice import BackendUnavailable
from codexops.releases import desired, pulumi_backend, sync
from codexops.releases.admission import named_release
from codexops.releases.pulumi_backend import PulumiBackend
from tests.support.evidence import commit_evidence, trust_a_signer
from tests.support.fake_backend import FakeReport, make_release
from tests.support.gitrepo import git, stack_repo

ROOT = Path(__file__).resolve().parents[2]
CODEXOPS = str(Path(sys.executable).with_name("codexops"))


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` on PATH that is never run: the stack object below stands in for the engine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\nexit 99\n")
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("CODEX_RELEASES_DIR", str(tmp_path / "releases"))
    return bin_dir


class FakeStack:
    def __init__(self, result: str = "succeeded", error: bool = False, changes: str = "") -> None:
        self.result, self.error, self.changes = result, error, changes
        self.config: dict[str, ConfigValue] = {}
        self.up_args: dict[str, Any] = {}
        self.preview_args: dict[str, Any] = {}
        self.deployed: str | None = None  # the image output of the last `up`

    def set_config(self, key: str, value: ConfigValue) -> None:
        self.config[key] = value

    def get_config(self, key: str) -> ConfigValue:
        return self.config[key]

    def up(self, **kwargs: Any) -> SimpleNamespace:
        self.up_args = kwargs
        if self.error:
            raise CommandError(CommandResult("", "error: docker daemon not reachable", 255))
        outputs = {"gatewayUrl": OutputValue("http://staging.living-codex.local", False)}
        if self.result == "succeeded":
            self.deployed = "from-the-file"
        return SimpleNamespace(summary=SimpleNamespace(result=self.result), outputs=outputs)

    def outputs(self) -> dict[str, OutputValue]:
        return {"image": OutputValue(self.deployed, False)} if self.deployed else {}

    def preview(self, **kwargs: Any) -> SimpleNamespace:
        self.preview_args = kwargs
        if self.changes:
            raise CommandError(CommandResult("", f"error: {self.changes}", 255))
        return SimpleNamespace(change_summary={"same": 30})


def test_without_the_cli_the_backend_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackendUnavailable, match="Pulumi CLI is not installed"):
        PulumiBackend()


def test_deploy_command_without_the_cli_exits_2(tmp_path: Path) -> None:
    make_release(tmp_path / "releases", "1.0.1", "a")
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "CODEX_BACKEND": "pulumi",
        "CODEX_RELEASES_DIR": str(tmp_path / "releases"),
        "CODEX_STACKS_DIR": str(tmp_path / "stacks"),
    }
    result = subprocess.run(
        [CODEXOPS, "deploy", "staging", "--release", "latest"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Pulumi CLI is not installed" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "stacks" / "staging" / "history.jsonl").exists()  # nothing recorded as deployed


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stack files in a throw-away Git repository (the backend's work dir)."""
    path = stack_repo(tmp_path / "repo")
    monkeypatch.setenv("CODEX_REPO_DIR", str(path))
    trust_a_signer(tmp_path, monkeypatch)
    return path


def test_deploy_runs_up_on_the_image_the_file_names_with_the_policy_pack(
    fake_pulumi: Path, tmp_path: Path, repo: Path
) -> None:
    release = make_release(tmp_path / "releases", "1.0.1", "a")
    desired.write("production", desired.Desired(release.id, release.image))
    stack = FakeStack()
    outcome = PulumiBackend(select_stack=lambda **_: stack).deploy("production", release, print)
    assert outcome.ok and "gatewayUrl=http://staging.living-codex.local" in outcome.detail
    assert stack.config == {}  # nothing set at run time: the committed file is the configuration
    assert stack.up_args["policy_packs"] == [str(repo / "policies")]
    assert stack.up_args["policy_pack_configs"] == [str(repo / "policies" / "config" / "production.json")]
    assert stack.up_args["refresh"] is True  # what really runs is read before it is changed
    stack.deployed = release.image  # what the program exports as `image` after that up
    assert PulumiBackend(select_stack=lambda **_: stack).current_release("production") == release
    serving = PulumiBackend(select_stack=lambda **_: stack).serving("production")
    assert serving.uniform == release.id and serving.image == release.image


def test_serving_is_the_exported_image_and_an_unknown_one_is_named(fake_pulumi: Path, repo: Path) -> None:
    assert PulumiBackend(select_stack=lambda **_: FakeStack()).serving("production").differences("1.0.1+a") == [
        "deployment serves no release (no image exported)"
    ]
    stack = FakeStack()
    stack.deployed = "ghcr.io/x/living-codex@sha256:" + "f" * 64
    serving = PulumiBackend(select_stack=lambda **_: stack).serving("production")
    assert serving.uniform is None and serving.image == stack.deployed
    assert "is no known release" in serving.describe()


def test_deploy_refuses_a_release_the_file_does_not_name(fake_pulumi: Path, tmp_path: Path, repo: Path) -> None:
    release = make_release(tmp_path / "releases", "1.0.1", "a")
    stack = FakeStack()
    outcome = PulumiBackend(select_stack=lambda **_: stack).deploy("production", release, print)
    assert not outcome.ok and "Pulumi.production.yaml names image (none), not" in outcome.detail
    assert not stack.up_args


def test_drift_is_preview_expect_no_changes(fake_pulumi: Path, repo: Path) -> None:
    quiet, drifted = FakeStack(), FakeStack(changes="2 resources would change: ~ app-deployment")
    assert PulumiBackend(select_stack=lambda **_: quiet).drift("production") == ""
    assert quiet.preview_args["expect_no_changes"] is True and quiet.preview_args["refresh"] is True
    assert quiet.preview_args["policy_packs"] == [str(repo / "policies")]
    found = sync.diff(PulumiBackend(select_stack=lambda **_: drifted), "production")
    assert found.exit_code == 1 and "~ app-deployment" in found.message
    assert sync.diff(PulumiBackend(select_stack=lambda **_: quiet), "production").exit_code == 0


def promote_an_image_the_store_lacks(repo: Path) -> str:
    """Production's committed file names an image release (with its evidence) that this store lacks."""
    image = "ghcr.io/living-codex/living-codex@sha256:" + "e" * 64
    commit_evidence("production", named_release("0.2.0+eeeeeeeeeeee", "sha256:" + "e" * 64, image))
    desired.write("production", desired.Desired("0.2.0+eeeeeeeeeeee", image))
    git(repo, "commit", "--quiet", "-am", "promote")
    return image


def test_sync_runs_up_on_the_files_image_and_is_a_no_op_once_it_serves(
    fake_pulumi: Path, tmp_path: Path, repo: Path
) -> None:
    image = promote_an_image_the_store_lacks(repo)
    stack = FakeStack()
    backend = PulumiBackend(select_stack=lambda **_: stack)
    backend.gate = lambda *_, **__: FakeReport("PASS", str(tmp_path), None)  # type: ignore[method-assign,assignment]
    code, verdict, _ = sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=print)
    assert (code, verdict) == (0, "PASS") and stack.up_args  # the release store is empty: the file's image
    stack.up_args, stack.deployed = {}, image
    again = sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=print)
    assert again[:2] == (0, "IN SYNC") and not stack.up_args
    assert stack.preview_args["expect_no_changes"] is True  # in sync: preview of file and program is empty
    # The same image, but the program (or the file beyond the image) changed: preview shows changes, so up.
    stack.preview_args, stack.changes = {}, "1 resource would change: ~ gateway-deployment"
    changed = sync.sync(backend, "production", confirm=lambda _: None, reports=tmp_path, say=print)
    assert changed[:2] == (0, "PASS") and stack.up_args


@pytest.mark.parametrize("stack", [FakeStack(result="failed"), FakeStack(error=True)])
def test_a_failed_up_is_never_reported_as_a_deployment(
    fake_pulumi: Path, tmp_path: Path, repo: Path, stack: FakeStack
) -> None:
    release = make_release(tmp_path / "releases", "1.0.1", "a")
    desired.write("staging", desired.Desired(release.id, release.image))
    outcome = PulumiBackend(select_stack=lambda **_: stack).deploy("staging", release, print)
    assert not outcome.ok and ("failed" in outcome.detail)


def test_a_release_without_an_image_is_not_deployed(fake_pulumi: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path / "releases", "1.0.1", "a")
    stack = FakeStack()
    no_image = replace(release, image=None)
    outcome = PulumiBackend(select_stack=lambda **_: stack).deploy("staging", no_image, print)
    assert not outcome.ok and "no image" in outcome.detail and not stack.up_args


class StackWithOutputs(FakeStack):
    def outputs(self) -> dict[str, OutputValue]:
        return {"gateUsername": OutputValue("codex-gate", False), "gatePassword": OutputValue("from-the-stack", True)}


def test_the_smoke_gate_logs_in_with_the_stacks_gate_account(
    fake_pulumi: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The gate needs no admin password: the account the stack exported, read after `up`."""
    from codexops import gate

    monkeypatch.delenv("CODEX_LOAD_USERNAME", raising=False)
    monkeypatch.delenv("CODEX_LOAD_PASSWORD", raising=False)
    monkeypatch.delenv("CODEX_ADMIN_PASSWORD", raising=False)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_backend, "run_gate", lambda target, **_: seen.setdefault("target", target))
    PulumiBackend(select_stack=lambda **_: StackWithOutputs()).gate("staging", "smoke", tmp_path)
    target = seen["target"]
    assert (target.load_username, target.load_password) == ("codex-gate", "from-the-stack")
    assert gate._load_user(target) == ("codex-gate", "from-the-stack")
    assert "from-the-stack" not in repr(target)


def test_without_the_gate_account_the_gate_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from codexops import gate
    from codexops.targets import remote_target

    for name in ("CODEX_LOAD_USERNAME", "CODEX_LOAD_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODEX_ADMIN_PASSWORD", "an-admin-password-is-not-used")
    with pytest.raises(gate.GateCannotRun, match="pulumi stack output gatePassword --show-secrets"):
        gate._load_user(remote_target("staging", "staging", None))


def test_diff_asks_what_serves_then_the_preview_as_for_any_backend(
    fake_pulumi: Path, tmp_path: Path, repo: Path
) -> None:
    image = promote_an_image_the_store_lacks(repo)
    stack = FakeStack()
    backend = PulumiBackend(select_stack=lambda **_: stack)
    never = sync.diff(backend, "production")  # nothing deployed yet: the outputs say so, no preview needed
    assert never.exit_code == 1 and "deployment serves no release (no image exported)" in never.message
    assert not stack.preview_args
    stack.deployed = image  # the store is empty: the exported image is the file's, so it is that release
    assert sync.diff(backend, "production") == sync.Drift(
        0, "production serves 0.2.0+eeeeeeeeeeee, as Pulumi.production.yaml names"
    )
    assert stack.preview_args["expect_no_changes"] is True
    stack.changes = "1 resource would change: ~ gateway-deployment"
    changed = sync.diff(backend, "production")
    assert changed.exit_code == 1 and "its settings differ from Pulumi.production.yaml" in changed.message
    assert "~ gateway-deployment" in changed.message
