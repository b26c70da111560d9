"""Versions from git describe: every commit its own version, the tag's version only on the tag."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.version import describe_version, running_version

PYPROJECT = '[project]\nname = "x"\nversion = "0.1.0"\n'


def git(tree: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_each_commit_has_its_own_version(tree: Path) -> None:
    first = describe_version(tree)
    assert first == f"0.1.0.dev1+g{git(tree, 'rev-parse', '--short=12', 'HEAD')}"
    (tree / "a").write_text("a")
    git(tree, "add", "a")
    git(tree, "commit", "-q", "-m", "two")
    second = describe_version(tree)
    assert second.startswith("0.1.0.dev2+g") and second != first


def test_a_clean_tag_is_the_project_version_and_commits_after_it_count_from_it(tree: Path) -> None:
    git(tree, "tag", "v0.1.0")
    assert describe_version(tree) == "0.1.0"
    (tree / "a").write_text("a")
    git(tree, "add", "a")
    git(tree, "commit", "-q", "-m", "two")
    assert describe_version(tree).startswith("0.1.0.dev1+g")


def test_uncommitted_changes_are_marked_dirty(tree: Path) -> None:
    git(tree, "tag", "v0.1.0")
    (tree / "pyproject.toml").write_text(PYPROJECT + "# edited\n")
    assert describe_version(tree) == f"0.1.0.dev0+g{git(tree, 'rev-parse', '--short=12', 'HEAD')}.dirty"


def test_outside_a_checkout_the_version_says_unknown(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    assert describe_version(tmp_path) == "0.1.0+unknown"


def test_a_process_reports_its_release_else_this_checkouts_version() -> None:
    assert running_version("0.1.0.dev3+gabc+0123456789ab") == "0.1.0.dev3+gabc+0123456789ab"
    here = running_version(None)
    assert here == describe_version(Path(__file__).resolve().parents[2]) and here != "1.0.0"
