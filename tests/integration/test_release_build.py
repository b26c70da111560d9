"""`codexops release build`: a wheel with the locked dependencies, in a release directory named by
version and content digest, never overwritten; a changed content is a new release."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codexops.cli import cli
from codexops.releases.model import ReleaseNotFound, load_release
from tests.support.releases import build, copy_with_migration

runner = CliRunner()


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_RELEASES_DIR", str(tmp_path / "releases"))
    return tmp_path / "releases"


def test_a_release_is_built_once_and_never_overwritten(store: Path) -> None:
    result = runner.invoke(cli, ["release", "build"])
    assert result.exit_code == 0, result.output
    release = load_release(result.output.strip().splitlines()[-1])
    assert release.path is not None and release.path.parent == store
    assert release.path.name == f"{release.version}-{release.short_digest}"
    manifest = json.loads((release.path / "release.json").read_text())
    assert manifest["digest"] == release.digest and manifest["schema_head"] == release.schema_head
    assert manifest["commit"] and manifest["built_at"]
    served = subprocess.run(
        [str(release.path / "venv" / "bin" / "python"), "-c", "import app, fastapi; print(app.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=release.path,
    ).stdout
    assert str(release.path) in served  # the release runs its own installed copy, not the checkout
    again = build()
    assert again.id == release.id and again.built_at == release.built_at  # same content: the same release
    assert (release.path / "release.json").stat().st_mode & 0o222 == 0
    other = build(CHAOS_LATENCY_MS="5")
    assert other.id != release.id and other.env == {"CHAOS_LATENCY_MS": "5"}
    assert json.loads((release.path / "release.json").read_text()) == manifest  # untouched
    assert load_release("latest").id == other.id
    assert load_release(release.short_digest).id == release.id


def test_a_new_migration_is_a_new_release_with_its_schema_head(tmp_path: Path) -> None:
    base = build()
    ahead = build(copy_with_migration(tmp_path / "tree", revision="9001"))
    assert ahead.schema_head == "9001" and base.schema_head != "9001"
    assert ahead.digest != base.digest


def test_unknown_release_says_what_to_run() -> None:
    with pytest.raises(ReleaseNotFound, match="codexops release build"):
        load_release("latest")


def test_an_image_release_without_docker_exits_2_or_needs_a_digest() -> None:
    result = runner.invoke(cli, ["release", "build", "--image", "living-codex:1.0.0"])
    assert result.exit_code == 2 and "REF@sha256" in result.output
    recorded = runner.invoke(cli, ["release", "build", "--image", "ghcr.io/x/living-codex@sha256:" + "ab" * 32])
    assert recorded.exit_code == 0, recorded.output
    release = load_release(recorded.output.strip().splitlines()[-1])
    assert release.image == "ghcr.io/x/living-codex@sha256:" + "ab" * 32 and release.path is None
