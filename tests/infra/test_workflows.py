"""The GitOps pipeline (.github/workflows): actionlint and yamllint clean, every action pinned by commit,
least privilege, one deploy per environment at a time, promotion only through the production environment."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
ACTIONS = sorted((ROOT / ".github").rglob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def _workflow(name: str) -> dict[Any, Any]:
    return _load(WORKFLOWS / name)


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_actionlint_and_yamllint_are_clean() -> None:
    result = _actionlint()
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run([str(BIN / "yamllint"), "--strict", "."], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_refuses_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: an output no job declares, and an unquoted shell variable."""
    text = (WORKFLOWS / "main.yml").read_text()
    broken = text.replace("needs.image.outputs.ref", "needs.image.outputs.digest").replace('"$RELEASE"', "$RELEASE")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    path = tmp_path / ".github" / "workflows" / "main.yml"
    path.write_text(broken)
    shutil.copytree(ROOT / ".github" / "actions", tmp_path / ".github" / "actions")
    result = _actionlint(path)
    assert result.returncode != 0
    assert "digest" in result.stdout and "SC2086" in result.stdout


def _uses(document: Any) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "uses" and isinstance(value, str):
                found.append(value)
            else:
                found += _uses(value)
    elif isinstance(document, list):
        for item in document:
            found += _uses(item)
    return found


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path: Path) -> None:
    remote = [u for u in _uses(_load(path)) if not u.startswith("./")]
    assert remote or path.parent.parent.name == "actions"  # a local action may use none
    for use in remote:
        assert PINNED.match(use), f"{path.name}: {use} is not pinned by a full commit SHA"
        line = next(line for line in path.read_text().splitlines() if use in line)
        assert re.search(r"#\s*v\d+\.\d+\.\d+$", line), f"{path.name}: say which release {use} is"


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_least_privilege(path: Path) -> None:
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}, "read-only by default; jobs widen what they need"
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", workflow["permissions"])
        assert "write-all" not in str(granted)
        uses = _uses(job)
        if any(u.startswith("pulumi/auth-actions@") for u in uses):
            assert granted.get("id-token") == "write", f"{name}: OIDC needs id-token: write"
        if granted.get("packages") == "write":
            assert any(u.startswith("docker/build-push-action@") for u in uses), f"{name}: packages: write unused"


def test_secrets_come_from_github_secrets_or_oidc() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            match = re.match(r"\s*([\w-]*(?:PASSWORD|TOKEN|password|token)[\w-]*):\s*(.+)$", line)
            if match and match.group(1) not in ("requested-token-type", "id-token"):
                assert re.fullmatch(r"\$\{\{ (secrets\.[A-Z_]+|github\.token) \}\}", match.group(2)), line


def test_deploys_are_serialised_and_never_cancelled() -> None:
    for name, group in (("main.yml", "staging"), ("promote.yml", "production")):
        assert _workflow(name)["concurrency"] == {"group": group, "cancel-in-progress": False}


def test_pull_requests_preview_both_stacks_with_the_policy_pack_and_comment() -> None:
    workflow = _workflow("pull-request.yml")
    assert {"lint", "test", "codexops-preview", "pulumi-preview"} <= set(workflow["jobs"])
    job = workflow["jobs"]["pulumi-preview"]
    assert job["strategy"]["matrix"]["stack"] == ["staging", "production"]
    preview = next(s for s in job["steps"] if s.get("with", {}).get("command") == "preview")["with"]
    assert preview["policyPacks"] == "policies" and preview["comment-on-pr"] is True
    assert "make test" in str(workflow["jobs"]["test"]["steps"]) and "make preview" in str(workflow["jobs"])


def test_main_builds_deploys_by_digest_and_gates_staging() -> None:
    jobs = _workflow("main.yml")["jobs"]
    build = next(s for s in jobs["image"]["steps"] if s.get("id") == "build")
    assert build["uses"].startswith("docker/build-push-action@") and build["with"]["push"] is True
    assert jobs["staging"]["env"]["IMAGE"] == "${{ needs.image.outputs.ref }}"
    runs = "\n".join(s.get("run", "") for s in jobs["staging"]["steps"])
    assert "codexops deploy staging" in runs and "codexops gate --target staging" in runs
    assert "GITHUB_STEP_SUMMARY" in runs
    # The evidence artifact carries histories and release records, never a stack folder (secrets.env, backups).
    assert "-name history.jsonl" in runs and "cp -r .local" not in runs


def test_promotion_is_a_pull_request_and_deploys_nothing() -> None:
    workflow = _workflow("promote.yml")
    assert set(workflow[True] if True in workflow else workflow["on"]) == {"workflow_dispatch"}
    job = workflow["jobs"]["production"]
    assert job["needs"] == "evidence"
    assert job["permissions"]["contents"] == "write" and job["permissions"]["pull-requests"] == "write"
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "codexops promote --from staging --to production --commit-only" in runs
    assert 'git push origin "HEAD:refs/heads/$branch"' in runs and "gh pr create --base main" in runs
    # the review of that pull request is the approval; nothing here deploys or sets config at run time
    assert "pulumi up" not in runs and "config set" not in runs
    assert not re.search(r"^\s*\S*codexops (sync|deploy)", runs, re.M)
    others = [p for p in WORKFLOWS.glob("*.yml") if p.name != "promote.yml"]
    assert others and not [p.name for p in others if "codexops promote" in p.read_text()]


def test_main_syncs_every_stack_whose_file_the_push_changed() -> None:
    jobs = _workflow("main.yml")["jobs"]
    diff = next(s for s in jobs["changes"]["steps"] if s.get("id") == "diff")
    assert diff["env"]["BEFORE"] == "${{ github.event.before }}"
    assert 'git diff --name-only "$BEFORE" "$GITHUB_SHA"' in diff["run"]
    sync = jobs["sync"]
    assert sync["needs"] == "changes" and sync["strategy"]["matrix"]["stack"] == (
        "${{ fromJSON(needs.changes.outputs.stacks) }}"
    )
    assert sync["environment"]["name"] == "${{ matrix.stack }}"
    assert sync["concurrency"] == {"group": "sync-${{ matrix.stack }}", "cancel-in-progress": False}
    assert 'codexops sync "$STACK"' in "\n".join(s.get("run", "") for s in sync["steps"])


def _changed_stacks(repo: Path, before: str, after: str) -> list[str]:
    """Run main.yml's "changes" step as Actions would (bash -e -o pipefail) in `repo`."""
    step = next(s for s in _workflow("main.yml")["jobs"]["changes"]["steps"] if s.get("id") == "diff")
    output = repo / "github_output"
    output.unlink(missing_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "BEFORE": before,
        "GITHUB_SHA": after,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(repo / "summary"),
    }
    subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=repo, env=env, check=True)
    line = output.read_text().strip()
    assert line.startswith("stacks=")
    stacks = yaml.safe_load(line.removeprefix("stacks="))
    assert isinstance(stacks, list)
    return stacks


def test_the_changes_step_lists_the_changed_stack_files_but_staging_and_kind(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    git("init", "--quiet")
    git("config", "user.name", "t")
    git("config", "user.email", "t@example.test")
    for name in ("staging", "production", "kind", "eu"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (tmp_path / "README.md").write_text("x\n")
    git("add", ".")
    git("commit", "--quiet", "-m", "first")
    first = git("rev-parse", "HEAD").strip()
    for name in ("staging", "production", "kind"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {a: 1}\n")
    git("commit", "--quiet", "-am", "promote")
    second = git("rev-parse", "HEAD").strip()
    (tmp_path / "README.md").write_text("y\n")
    git("commit", "--quiet", "-am", "docs")
    third = git("rev-parse", "HEAD").strip()
    assert _changed_stacks(tmp_path, first, second) == ["production"]
    assert _changed_stacks(tmp_path, second, third) == []  # no stack file: the sync job is skipped
    assert _changed_stacks(tmp_path, "0" * 40, third) == ["eu", "production"]  # no "before": every file


def test_drift_runs_codexops_diff_for_each_stack() -> None:
    job = _workflow("drift.yml")["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == ["staging", "production"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'codexops diff "$STACK"' in runs
    # only staging (which follows main's head) is compared against what it runs rather than its file
    setting = next(s for s in job["steps"] if "config set" in s.get("run", ""))
    assert setting["if"] == "matrix.stack == 'staging'"


def test_end_to_end_deploys_the_production_program_on_kind_then_gates_it() -> None:
    workflow = _workflow("e2e-kind.yml")
    triggers = workflow[True]
    assert "schedule" in triggers and triggers["pull_request"]["types"] == ["labeled", "synchronize"]
    job = workflow["jobs"]["kind"]
    assert "'e2e'" in job["if"]
    assert any(u.startswith("helm/kind-action@") for u in _uses(job))
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "cert-manager.yaml" in runs and "--stack kind" in runs
    assert "--policy-pack policies --policy-pack-config policies/config/production.json" in runs
    assert "codexops gate --target" in runs
    spec = load_spec("kind")
    assert (spec.platform, spec.environment, spec.tls) == ("kubernetes", "Production", True)


def test_staging_gate_is_attested_with_the_workflows_identity() -> None:
    job = _workflow("main.yml")["jobs"]["staging"]
    assert job["permissions"]["attestations"] == "write" and job["permissions"]["id-token"] == "write"
    names = [s.get("name", s.get("uses", "")) for s in job["steps"]]
    attest = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/attest@"))
    assert names.index("Gate staging") < job["steps"].index(attest)
    assert attest["with"]["predicate-type"] == "https://living-codex.dev/gate/v1"  # what evidence.py verifies
    assert attest["with"]["subject-digest"] == "${{ steps.statement.outputs.digest }}"  # the digest the gate judged
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "predicate.json" in runs and "attestation.sigstore.json" in runs  # attestation.py's file names


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_every_run_step_fails_on_a_failing_pipe(path: Path) -> None:
    """`shell: bash` runs steps as `bash -e -o pipefail {0}`; the implicit default has no pipefail."""
    workflow = _load(path)
    assert workflow.get("defaults", {}).get("run", {}).get("shell") == "bash"
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            assert step.get("shell", "bash") == "bash", f"{name}: {step.get('name')} overrides the shell"


def test_dependency_updates_cover_actions_images_and_python() -> None:
    import json

    config = json.loads((ROOT / "renovate.json").read_text())
    assert {"github-actions", "dockerfile", "pep621", "custom.regex"} <= set(config["enabledManagers"])
    assert "helpers:pinGitHubActionDigests" in config["extends"]  # updates keep actions pinned by commit
    (images,) = config["customManagers"]
    assert images["managerFilePatterns"] == ["/^infra/images\\.py$/"] and images["datasourceTemplate"] == "docker"
    # The manager's pattern (JavaScript named groups) finds every image constant of infra/images.py.
    pattern = re.compile(images["matchStrings"][0].replace("(?<", "(?P<"))
    from infra import images as pinned

    # The app's own repository is this workflow's output, kept current by promotion, not by Renovate.
    constants = {k: v for k, v in vars(pinned).items() if k.isupper() and isinstance(v, str) and k != "APP_REPOSITORY"}
    text = (ROOT / "infra" / "images.py").read_text()
    found = {m.group("depName") for m in pattern.finditer(text)}
    assert found == {value.split("@")[0].rsplit(":", 1)[0] for value in constants.values()}
    # A pinned constant is rewritten whole (tag and digest); one without a digest gets one.
    assert images["autoReplaceStringTemplate"] == '"{{depName}}:{{newValue}}{{#if newDigest}}@{{newDigest}}{{/if}}"'
    assert {"matchManagers": ["custom.regex"], "pinDigests": True} in config["packageRules"]
    assert (ROOT / "app" / "Dockerfile").exists() and (ROOT / "uv.lock").exists()
