"""Docker staging's canary steps, driven by codexops through the Automation API: the sequence of `pulumi up`
runs and the config file each one reads, against a stand-in stack object (no Pulumi CLI here: no real
`pulumi up` runs). The analysis reads a stand-in for the stack's Prometheus answering per release."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pulumi.automation import OutputValue
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError

from codexops.releases import desired, pulumi_backend
from codexops.releases.pulumi_backend import PulumiBackend
from tests.support.fake_backend import make_release
from tests.support.gitrepo import stack_repo
from tests.unit.test_pulumi_backend import fake_pulumi  # noqa: F401  (a fixture)

SERVING_IMAGE = "ghcr.io/living-codex/living-codex@sha256:" + "a" * 64
STEPS = "  living-codex:rollout:\n    steps: [{weight: 10, pause: 1s}, {weight: 50, pause: 1s}]\n"


class RecordingStack:
    """Stands for an Automation API stack: records each `up` and the config it was given."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.ups: list[dict[str, Any]] = []  # each up's living-codex: config (None: the committed file)
        self.fail_on = fail_on  # the number of the `up` that fails (1-based)

    def up(self, **kwargs: Any) -> SimpleNamespace:
        path = kwargs.get("config_file")
        config = yaml.safe_load(Path(path).read_text())["config"] if path else None
        self.ups.append({"config": config, "message": kwargs["message"], "policy": kwargs["policy_packs"]})
        if len(self.ups) == self.fail_on:
            raise CommandError(CommandResult("", "error: docker exec: nginx -t failed", 255))
        return SimpleNamespace(summary=SimpleNamespace(result="succeeded"), outputs={})

    def outputs(self) -> dict[str, OutputValue]:
        return {"image": OutputValue(SERVING_IMAGE, False), "release": OutputValue("1.0.0+a", False)}

    def steps(self) -> list[object]:
        """The canary's weight in each `up`: None without one; 'file' for the committed file itself."""
        return [
            "file" if u["config"] is None else (u["config"].get("living-codex:canary") or {}).get("weight")
            for u in self.ups
        ]


def prometheus(slow: str | None) -> Any:
    """Answers the analysis' queries: 100 requests each side, no errors, p95/p99 40 ms; 900 ms for `slow`."""

    def query(expression: str) -> float | None:
        if expression.startswith("count(codex_build_info"):
            return 1.0
        if expression.startswith("histogram_quantile"):
            return 0.9 if slow and f'version="{slow}"' in expression else 0.04
        if "status=~" in expression:
            return 0.0
        return 100.0

    return query


@pytest.fixture
def staging(fake_pulumi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    repo = stack_repo(tmp_path / "repo")
    with (repo / "Pulumi.staging.yaml").open("a") as file:
        file.write(STEPS)
    monkeypatch.setenv("CODEX_REPO_DIR", str(repo))
    monkeypatch.setenv("CODEX_PROMETHEUS_URL", "http://prometheus.staging.test:9090")
    release = make_release(tmp_path / "releases", "1.1.0", "b")
    desired.write("staging", desired.Desired(release.id, release.image))
    return SimpleNamespace(repo=repo, release=release)


def deploy(staging: Any, stack: RecordingStack, slow: str | None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(pulumi_backend, "instant_query", lambda url: prometheus(slow))
    return PulumiBackend(select_stack=lambda **_: stack).deploy("staging", staging.release, print)


def test_a_healthy_release_walks_every_step_then_the_file_is_applied(
    staging: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = RecordingStack()
    committed = (staging.repo / "Pulumi.staging.yaml").read_text()
    outcome = deploy(staging, stack, None, monkeypatch)
    assert outcome.ok and "after 2 canary steps" in outcome.detail, outcome.detail
    assert stack.steps() == [0, 10, 50, "file"]  # started, each step, then the release everywhere
    for up in stack.ups[:3]:  # the serving replicas are held on what serves while the canary runs
        config = up["config"]
        assert config["living-codex:image"] == SERVING_IMAGE and config["living-codex:release"] == "1.0.0+a"
        assert config["living-codex:canary"]["image"] == staging.release.image
        assert config["living-codex:canary"]["release"] == staging.release.id
        assert config["docker:host"] == "ssh://deploy@staging.living-codex.org"  # the rest of the file as is
        assert up["policy"] == [str(staging.repo / "policies")]
    assert (staging.repo / "Pulumi.staging.yaml").read_text() == committed  # the committed file untouched
    assert outcome.rollout["outcome"] == "PASSED"
    assert [s["decision"] for s in outcome.rollout["steps"]] == ["PASS", "PASS"]


def test_a_slow_canary_aborts_at_the_first_step_and_is_removed(staging: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = RecordingStack()
    outcome = deploy(staging, stack, staging.release.id, monkeypatch)
    assert not outcome.ok and "canary aborted" in outcome.detail and "step 1 (10%) FAIL" in outcome.detail
    # Out of the upstream, then removed; the committed file (the new image everywhere) is never applied.
    assert stack.steps() == [0, 10, 0, None]
    removed = stack.ups[-1]["config"]
    assert "living-codex:canary" not in removed and removed["living-codex:image"] == SERVING_IMAGE
    assert outcome.rollout["outcome"] == "ABORTED" and len(outcome.rollout["steps"]) == 1


def test_a_failed_step_up_removes_the_canary(staging: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = RecordingStack(fail_on=2)  # the 10% step's up: e.g. the new nginx.conf refused by nginx -t
    outcome = deploy(staging, stack, None, monkeypatch)
    assert not outcome.ok and "nginx -t failed" in outcome.detail
    assert stack.steps() == [0, 10, None]  # no file applied; the canary removed by an up without it


def test_without_prometheus_nothing_is_deployed(staging: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEX_PROMETHEUS_URL")
    stack = RecordingStack()
    outcome = deploy(staging, stack, None, monkeypatch)
    assert not outcome.ok and "CODEX_PROMETHEUS_URL" in outcome.detail and not stack.ups


def test_the_release_already_served_goes_straight_to_up(staging: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = RecordingStack()
    monkeypatch.setattr(RecordingStack, "outputs", lambda self: {"image": OutputValue(staging.release.image, False)})
    assert deploy(staging, stack, None, monkeypatch).ok
    assert stack.steps() == ["file"]
