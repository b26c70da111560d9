"""`codexops release build`: a wheel with the locked dependencies, in a release directory named by
version and content digest, never overwritten; a changed content is a new release."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.version import describe_version
from codexops.cli import cli
from codexops.releases import manifest
from codexops.releases.build import BuildError, release_differences
from codexops.releases.model import ReleaseNotFound, load_release, split_release_id
from infra.spec import ROOT
from tests.support.releases import build, copy_checkout, copy_with_migration

# Up to two real release builds a test, niced beside the stack shards: the migration test took 72 s in a
# run and passed the suite's 120 s in another (5fa4a07, 2026-12-08), its build compiling a changed tree.
pytestmark = pytest.mark.timeout(300)
runner = CliRunner()
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_RELEASES_DIR", str(tmp_path / "releases"))
    return tmp_path / "releases"


def test_a_release_is_built_once_and_never_overwritten(store: Path) -> None:
    result = runner.invoke(cli, ["release", "build"])
    assert result.exit_code == 0, result.output
    release = load_release(result.output.strip().splitlines()[-1])
    assert release.path is not None and release.path.parent == store
    assert release.version == describe_version(ROOT) and release.version != "0.1.0"  # git describe's, per commit
    assert split_release_id(release.id) == (release.version, release.short_digest)
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


def _offline(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`command` in a network namespace of its own: no package index, no DNS."""
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --net is not permitted here (needs root or user namespaces)")
    return subprocess.run(
        ["unshare", "--net", "bash", "-c", f"ip link set lo up; {command}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_release_builds_without_the_package_index_from_uvs_cache(store: Path) -> None:
    """make setup filled uv's cache; the build needs nothing more from the index."""
    built = _offline(f"{BIN / 'codexops'} release build", {"CODEX_RELEASES_DIR": str(store)})
    assert built.returncode == 0, built.stdout + built.stderr
    release = load_release(built.stdout.strip().splitlines()[-1])
    assert release.path is not None and (release.path / "venv" / "bin" / "uvicorn").exists()


def test_without_the_index_and_with_an_empty_cache_the_build_says_what_to_run(store: Path, tmp_path: Path) -> None:
    env = {"CODEX_RELEASES_DIR": str(store), "UV_CACHE_DIR": str(tmp_path / "empty-cache"), "UV_HTTP_RETRIES": "0"}
    built = _offline(f"{BIN / 'codexops'} release build", env)
    assert built.returncode == 2, built.stdout + built.stderr
    assert "from uv's cache and from the package index" in built.stderr
    assert "run `make setup` once with network access" in built.stderr
    assert "Traceback" not in built.stderr and not list(store.glob("*/release.json"))


def test_a_syntax_error_is_refused_with_its_file_and_line(store: Path, tmp_path: Path) -> None:
    tree = copy_checkout(tmp_path / "tree")
    (tree / "app" / "broken_module.py").write_text("ok = 1\ndef broken(:\n    pass\n")
    with pytest.raises(BuildError, match=r"does not compile: app/broken_module\.py, line 2: SyntaxError"):
        build(tree)
    assert not list(store.glob("*/release.json"))  # no release was named


def test_a_broken_import_is_refused(store: Path, tmp_path: Path) -> None:
    tree = copy_checkout(tmp_path / "tree")
    main = tree / "app" / "main.py"
    main.write_text(main.read_text() + "\nimport app.no_such_module  # noqa: E402\n")
    with pytest.raises(BuildError, match=r"`import app.main` fails.*No module named 'app.no_such_module'"):
        build(tree)
    assert not list(store.glob("*/release.json"))


def test_a_release_is_read_only_verified_in_well_under_a_second_and_rebuilt_when_edited(store: Path) -> None:
    release = build()
    assert release.path is not None and release.manifest_digest.startswith("sha256:")
    listed = len((release.path / manifest.MANIFEST_FILE).read_text().splitlines())
    began, cpu_began = time.monotonic(), time.process_time()
    assert release_differences(release) == []
    took, cpu = time.monotonic() - began, time.process_time() - cpu_began
    print(f"verified {listed} files of {release.id} in {took:.2f} s ({cpu:.2f} s of CPU)")
    # The CPU it costs, not the wall time: niced beside the stack shards, a second of CPU can take ten.
    assert listed > 3000 and cpu < 3
    assert list(release.path.rglob("__pycache__/*.cpython-*.pyc"))  # byte-compiled at build
    modes = {stat.S_IMODE(p.stat().st_mode) for p in release.path.rglob("*") if not p.is_symlink()}
    assert modes <= {0o444, 0o555} and stat.S_IMODE(release.path.stat().st_mode) == 0o555
    # Every file its own copy: a file linked with uv's cache, the checkout's .venv or another release
    # would change with them (and a rebuild would link the edited bytes back in).
    shared = [p for p in release.path.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_nlink > 1]
    assert shared == []
    edited = next(release.path.glob("venv/lib/python*/site-packages/app/health.py"))
    with edited.open("a") as handle:  # as root, or after a chmod: the mode bits stop mistakes only
        handle.write("\nprint('injected')\n")
    assert [d for d in release_differences(release) if d.endswith("app/health.py (changed)")]
    again = build()  # the edited folder is moved aside, the release built again under its id
    assert again.id == release.id and release_differences(again) == []
    assert next(p.name for p in (store / ".tampered").iterdir()).startswith(release.path.name)
