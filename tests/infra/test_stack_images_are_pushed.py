"""Every image a stack names is one a workflow pushes, or a digest.

The workflows are parsed for what they push (docker/build-push-action's tags, `docker push`), each
expression turned into the pattern of values it can take; every Pulumi.<stack>.yaml and the program's
default are checked against them."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra import images
from infra.spec import ROOT, EnvironmentSpec, available_stacks

WORKFLOWS = ROOT / ".github" / "workflows"
DIGEST = re.compile(r"^(?P<repository>[^@\s]+)@sha256:[0-9a-f]{64}$")
EXPRESSIONS = {  # what an expression in a pushed reference can stand for
    r"${{ github.sha }}": "[0-9a-f]{40}",
    r"$GITHUB_SHA": "[0-9a-f]{40}",
    r"${OWNER,,}": "[a-z0-9][a-z0-9-]*",
}


def _pattern(reference: str, outputs: dict[str, str]) -> str:
    for name, value in outputs.items():
        reference = reference.replace(f"${{{{ steps.{name} }}}}", value)
    parts = re.split(r"(\$\{\{ [^}]+ \}\}|\$\{[A-Z_]+,,\}|\$[A-Z_]+)", reference)
    pattern = ""
    for part in parts:
        if part in EXPRESSIONS:
            pattern += EXPRESSIONS[part]
        elif part.startswith("$"):
            raise AssertionError(f"a pushed reference has an expression this test cannot read: {part}")
        else:
            pattern += re.escape(part)
    return pattern


def _step_outputs(steps: list[dict[str, Any]]) -> dict[str, str]:
    """`steps.<id>.outputs.<key>` of run steps that echo `key=value` into GITHUB_OUTPUT."""
    outputs = {}
    for step in steps:
        for key, value in re.findall(
            r'echo "(\w+)=([^"$]*(?:\$\{[A-Z_]+,,\}[^"$]*)*)" >> "\$GITHUB_OUTPUT"', step.get("run", "")
        ):
            outputs[f"{step.get('id')}.outputs.{key}"] = value
    return outputs


def pushed_patterns() -> list[str]:
    """Regular expressions of every image reference some workflow pushes."""
    patterns = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            steps = job.get("steps", [])
            outputs = _step_outputs(steps)
            for step in steps:
                if str(step.get("uses", "")).startswith("docker/build-push-action@") and step["with"].get("push"):
                    patterns += [_pattern(tag.strip(), outputs) for tag in str(step["with"]["tags"]).split(",")]
                for reference in re.findall(r'docker push "([^"]+)"', step.get("run", "")):
                    patterns.append(_pattern(reference, outputs))
    return patterns


def pushed_repositories() -> list[str]:
    return [p.rsplit(":", 1)[0] if ":" in p.rsplit("/", 1)[-1] else p for p in pushed_patterns()]


def acceptable(image: str) -> bool:
    """A digest of a repository a workflow pushes to, or exactly a tag a workflow pushes."""
    digest = DIGEST.match(image)
    if digest:
        return any(re.fullmatch(p.rsplit(":", 1)[0], digest["repository"]) for p in pushed_patterns())
    return any(re.fullmatch(p, image) for p in pushed_patterns())


def test_the_workflows_push_what_this_test_reads() -> None:
    patterns = pushed_patterns()
    assert any(re.fullmatch(p, "ghcr.io/living-codex/living-codex:" + "a" * 40) for p in patterns), patterns
    assert any(re.fullmatch(p, "kind-registry:5000/living-codex:" + "b" * 40) for p in patterns), patterns
    assert not acceptable("ghcr.io/living-codex/living-codex:1.0.0")  # the tag production used to name
    assert not acceptable("living-codex:1.0.0") and not acceptable("docker.io/someone/else@sha256:" + "c" * 64)
    assert acceptable("ghcr.io/living-codex/living-codex@sha256:" + "c" * 64)


@pytest.mark.parametrize("stack", available_stacks())
def test_each_image_a_stack_names_is_pushed_or_a_digest(stack: str) -> None:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    image = config.get("living-codex:image")
    assert image is None or acceptable(str(image)), f"Pulumi.{stack}.yaml names {image}, which no workflow pushes"


def test_the_programs_defaults_are_pushed_or_digests() -> None:
    assert EnvironmentSpec.model_fields["image"].default is None  # no stack falls back to an unpushed tag
    assert acceptable(f"{images.APP_REPOSITORY}@sha256:" + "d" * 64)  # what with_release and previews use
    for image in images.THIRD_PARTY:  # not pushed by us: by digest, or a tag the program resolves at preview
        assert DIGEST.match(image) or re.fullmatch(r"[\w./-]+:[\w.-]+", image), image
