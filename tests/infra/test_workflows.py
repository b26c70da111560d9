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
                # or the promotion App's short-lived installation token (promote.yml)
                token = r"secrets\.[A-Z_]+|github\.token|steps\.app\.outputs\.token"
                assert re.fullmatch(rf"\$\{{\{{ ({token}) \}}\}}", match.group(2)), line


def test_deploys_are_serialised_per_stack_and_job_and_never_cancelled() -> None:
    assert _workflow("promote.yml")["concurrency"] == {"group": "production", "cancel-in-progress": False}
    # No workflow-wide group (it cancelled pending runs across stacks): each job that changes or reads a stack.
    main = _workflow("main.yml")
    assert "concurrency" not in main
    queued = {"cancel-in-progress": False}
    assert main["jobs"]["staging"]["concurrency"] == {"group": "sync-staging", **queued}
    assert main["jobs"]["sync"]["concurrency"] == {"group": "sync-${{ matrix.stack }}", **queued}
    assert _workflow("drift.yml")["jobs"]["drift"]["concurrency"] == {"group": "sync-${{ matrix.stack }}", **queued}


def _jobs() -> list[tuple[str, str, dict[Any, Any]]]:
    return [(path.name, name, job) for path in WORKFLOWS.glob("*.yml") for name, job in _load(path)["jobs"].items()]


def test_no_organisation_token_and_each_job_a_team_of_its_own() -> None:
    # An organisation token opens every ESC environment (production's kubeconfig, registry token).
    text = "\n".join(path.read_text() for path in WORKFLOWS.glob("*.yml"))
    assert "access_token:organization" not in text
    scopes = {}
    for workflow, name, job in _jobs():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("pulumi/auth-actions@"):
                assert step["with"]["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
                scopes[f"{workflow}:{name}"] = (step["with"]["scope"], job.get("environment"))
    assert scopes == {
        "main.yml:sync": ("team:living-codex-${{ matrix.stack }}", {"name": "${{ matrix.stack }}"}),
        "main.yml:staging": ("team:living-codex-staging", {"name": "staging", "url": "${{ vars.STAGING_URL }}"}),
        "drift.yml:drift": ("team:living-codex-${{ matrix.stack }}", "${{ matrix.stack }}"),
        "promote.yml:production": ("team:living-codex-promotion", "promotion"),
        "pull-request.yml:pulumi-preview": ("team:living-codex-preview", "preview"),
    }


def test_every_secret_lives_in_the_environment_of_the_job_that_uses_it() -> None:
    for workflow, name, job in _jobs():
        used = set(re.findall(r"secrets\.([A-Z_]+)", yaml.safe_dump(job))) - {"GITHUB_TOKEN"}
        if used:
            assert job.get("environment"), (workflow, name, used)
    # Pull requests' code never gets staging's SSH key, nor production's ESC environment.
    preview = _workflow("pull-request.yml")["jobs"]["pulumi-preview"]
    assert "STAGING_SSH_KEY" not in yaml.safe_dump(preview) and "strategy" not in preview
    swap = next(s for s in preview["steps"] if "production-preview" in s.get("run", ""))
    assert "living-codex/production-preview" in swap["run"] and "grep -qx" in swap["run"]


ZIZMOR_EXPLAINED = {"self-repository", "anonymous-definition", "concurrency-limits"}  # README: Workflow audit


def test_zizmor_auditor_finds_only_the_explained_findings() -> None:
    import json

    zizmor = shutil.which("zizmor", path=str(BIN))
    assert zizmor, "zizmor is a dev dependency (pyproject.toml)"
    result = subprocess.run(
        [zizmor, "--offline", "--persona", "auditor", "--format", "json", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    findings = json.loads(result.stdout)
    assert {f["ident"] for f in findings} <= ZIZMOR_EXPLAINED, [(f["ident"], f["desc"]) for f in findings]
    limits = [f for f in findings if f["ident"] == "concurrency-limits"]
    assert len(limits) <= 1  # main.yml's changes and image jobs: building each push's image in parallel is safe


def test_pull_requests_preview_production_with_the_policy_pack_and_comment() -> None:
    workflow = _workflow("pull-request.yml")
    assert {"lint", "test", "codexops-preview", "pulumi-preview"} <= set(workflow["jobs"])
    job = workflow["jobs"]["pulumi-preview"]
    assert job["env"]["STACK"] == "${{ vars.PULUMI_ORG }}/living-codex/production"
    preview = next(s for s in job["steps"] if s.get("with", {}).get("command") == "preview")["with"]
    assert preview["policyPacks"] == "policies" and preview["comment-on-pr"] is True
    assert preview["policyPackConfigs"] == "policies/config/production.json"
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
    assert job["permissions"]["contents"] == "read" and "pull-requests" not in job["permissions"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "codexops promote --from staging --to production --commit-only" in runs
    # Evidence verification (gh attestation verify oci://<private image>) has a token and the registry.
    promote = next(s for s in job["steps"] if "codexops promote" in s.get("run", ""))
    assert promote["env"]["GH_TOKEN"] == "${{ github.token }}"
    steps = job["steps"]
    login = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("docker/login-action@"))
    assert steps[login]["with"]["registry"] == "ghcr.io" and login < steps.index(promote)
    assert job["permissions"]["packages"] == "read" and job["permissions"]["attestations"] == "read"
    # The pull request is opened with the GitHub App's token, so its checks run (GITHUB_TOKEN's start none).
    app = next(s for s in steps if s.get("uses", "").startswith("actions/create-github-app-token@"))
    opening = next(s for s in steps if "gh pr create" in s.get("run", ""))
    assert opening["env"]["GH_TOKEN"] == f"${{{{ steps.{app['id']}.outputs.token }}}}"
    assert app["with"]["permission-contents"] == "write" and app["with"]["permission-pull-requests"] == "write"
    assert job["environment"] == "promotion"
    assert 'git push origin "HEAD:refs/heads/$branch"' in runs and "gh pr create --base main" in runs
    # the review of that pull request is the approval; nothing here deploys or sets config at run time
    assert "pulumi up" not in runs and "config set" not in runs
    assert not re.search(r"^\s*\S*codexops (sync|deploy)", runs, re.M)
    others = [p for p in WORKFLOWS.glob("*.yml") if p.name != "promote.yml"]
    assert others and not [p.name for p in others if "codexops promote" in p.read_text()]


def test_main_syncs_every_stack_on_every_push_staging_first() -> None:
    workflow = _workflow("main.yml")
    assert set(workflow[True]) == {"push"} and "paths" not in workflow[True]["push"]  # a program change too
    jobs = workflow["jobs"]
    diff = next(s for s in jobs["changes"]["steps"] if s.get("id") == "diff")
    assert "git diff" not in diff["run"]  # desired vs deployed decides (codexops sync), not the push's diff
    sync = jobs["sync"]
    assert sync["needs"] == ["changes", "staging"] and sync["strategy"]["matrix"]["stack"] == (
        "${{ fromJSON(needs.changes.outputs.stacks) }}"
    )
    assert sync["environment"]["name"] == "${{ matrix.stack }}"
    assert 'codexops sync "$STACK"' in "\n".join(s.get("run", "") for s in sync["steps"])


def test_the_production_sync_gate_reaches_alertmanager_and_checks_the_pod_network() -> None:
    sync = _workflow("main.yml")["jobs"]["sync"]
    names = [s.get("name", "") for s in sync["steps"]]
    forward = next(s for s in sync["steps"] if "port-forward" in s.get("run", ""))
    assert forward["if"] == "matrix.stack == 'production'"
    assert "service/living-codex-${forward%:*}" in forward["run"] and "alertmanager:9093" in forward["run"]
    assert sync["env"]["CODEX_ALERTMANAGER_URL"] == "http://127.0.0.1:9093"
    assert names.index(forward["name"]) < next(i for i, n in enumerate(names) if n.startswith("codexops sync"))
    cidr = next(s for s in sync["steps"] if "spec.podCIDR" in s.get("run", ""))
    assert "subnet_of" in cidr["run"] and "load_spec" in cidr["run"]


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


def test_the_changes_step_lists_every_stack_file_but_staging_and_kind(tmp_path: Path) -> None:
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
    # Whatever the push changed (a stack file, the docs, nothing usable before it): every stack is synced.
    for before, after in ((first, second), (second, third), ("0" * 40, third)):
        assert _changed_stacks(tmp_path, before, after) == ["eu", "production"]


def test_drift_runs_codexops_diff_for_each_stack_as_sync_would() -> None:
    job = _workflow("drift.yml")["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == ["staging", "production"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'codexops diff "$STACK"' in runs
    # only staging (which follows main's head) is compared against what it runs rather than its file, and
    # with everything deploy sets: the image and the release (CODEX_RELEASE), both outputs of the program
    setting = next(s for s in job["steps"] if "config set" in s.get("run", ""))
    assert setting["if"] == "matrix.stack == 'staging'"
    assert "for key in image release" in setting["run"] and 'config set "living-codex:$key"' in setting["run"]
    program = (ROOT / "infra" / "program.py").read_text()
    assert 'pulumi.export("image"' in program and 'pulumi.export("release"' in program
    # production's drift runs where sync runs: the runner that reaches the cluster
    assert "vars.PRODUCTION_RUNNER" in job["runs-on"] and "vars.PRODUCTION_RUNNER" in str(
        _workflow("main.yml")["jobs"]["sync"]["runs-on"]
    )


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
